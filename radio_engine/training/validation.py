"""Validation during training: next-track pairs of the validation sessions, scored after an epoch.

The score is the one the GRU trains with: q . track_out plus the learned weights times the
session indicators (model.session_indicators, as the worker computes them), ranked over the
vocabulary. The GRU alone and the indicators alone are measured on the same pairs, so the GRU's
own contribution shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from radio_engine.model.session_indicators import session_indicators
from radio_engine.training import metrics
from radio_engine.training.data import Events
from radio_engine.training.encoding import Encoded, Vocab, accepted_events, encode
from radio_engine.training.model import ListenerModel
from radio_engine.training.pairs import EvalCatalog, Pairs, SessionLog

#: pairs scored together (dense [pairs, vocabulary] scores)
PAIR_BATCH = 1024


@torch.no_grad()
def all_queries(model: ListenerModel, data: Encoded, vocab: Vocab, batch: int = 512) -> np.ndarray:
    """q after every event of every listener (state carried through their whole history)."""
    model.eval()
    ids, artists = torch.from_numpy(data.ids), torch.from_numpy(data.artists)
    context = torch.from_numpy(data.context)
    audio, has_audio = vocab.audio_table(model.dims["audio_embedding"])
    out = np.zeros((len(data.ids), model.dims["query"]), dtype=np.float32)
    users = sorted(data.users, key=len, reverse=True)
    for lo in range(0, len(users), batch):
        group = users[lo : lo + batch]
        h = model.initial_state(len(group))
        for t in range(len(group[0])):
            live = [i for i, u in enumerate(group) if t < len(u)]
            rows = torch.from_numpy(np.array([group[i][t] for i in live]))
            track_in, _ = model.tracks(
                ids[rows], artists[rows], audio[ids[rows]], has_audio[ids[rows]]
            )
            h_live, q = model.step(torch.cat([track_in, context[rows]], dim=-1), h[live])
            h[live] = h_live
            out[rows.numpy()] = q.numpy()
    return out


@dataclass
class ValidationPairs:
    """Next-track pairs inside the validation sessions, prepared once for every epoch.

    data: train and valid events encoded together (each epoch replays them all to warm the
    states). Only accepted targets make pairs (a skipped or disliked track is never one); the
    prefix keeps every event. target_event: each pair's target, an index into valid. Candidates
    are the vocabulary's tracks (index - 1); a target outside it counts as a miss. indicators:
    per pair, sparse [P, V] matrices of the session indicators (INDICATORS order), so the
    in-training score q . track_out + session_weights . indicators is ranked.
    """

    data: Encoded
    prev_event: np.ndarray  # index into concat(train, valid) of each pair's last prefix event
    targets: np.ndarray  # vocabulary row of each target, -1 when unknown
    indicators: list[sp.csr_matrix]
    target_event: np.ndarray

    @classmethod
    def build(
        cls, train: Events, valid: Events, vocab: Vocab, feedback: bool = True
    ) -> ValidationPairs:
        """The pairs of `valid`, its listeners warmed by `train`; feedback as in encode()."""
        catalog = EvalCatalog.build(
            np.asarray(vocab.track_ids), np.asarray(vocab.track_artists), train, valid
        )
        pairs = Pairs.from_log(
            SessionLog.from_events(valid, catalog), SessionLog.from_events(train, catalog)
        )
        pairs = pairs.take(accepted_events(valid)[pairs.target_event])
        n_vocab = len(vocab.track_ids)
        candidates = np.arange(n_vocab)
        artists = catalog.artist_codes[:n_vocab]
        parts: list[list[sp.csr_matrix]] = [[], [], []]
        for lo in range(0, pairs.size, PAIR_BATCH):
            context = pairs.prefixes(slice(lo, lo + PAIR_BATCH)).session_context()
            stacked = session_indicators(context, candidates, artists).stacked()
            for i, part in enumerate(parts):
                part.append(sp.csr_matrix(stacked[:, :, i]))
        targets = np.where(pairs.target_rows < n_vocab, pairs.target_rows, -1)
        return cls(
            encode(Events.concat([train, valid]), vocab, feedback),
            len(train) + pairs.prev_event,
            targets,
            [sp.vstack(p, format="csr") if p else sp.csr_matrix((0, n_vocab)) for p in parts],
            pairs.target_event,
        )


@torch.no_grad()
def pair_scores(
    model: ListenerModel, pairs: ValidationPairs, vocab: Vocab
) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
    """Yield (slice of pairs, GRU scores, session-indicator scores) [b, V] over the vocabulary,
    PAIR_BATCH pairs at a time; the sum is the score the model trains with."""
    q_sorted = all_queries(model, pairs.data, vocab)
    q = np.empty_like(q_sorted)
    q[pairs.data.order] = q_sorted
    q = q[pairs.prev_event]
    n_vocab = len(vocab.track_ids)
    _, track_out = model.tracks(
        torch.arange(1, n_vocab + 1),
        torch.from_numpy(vocab.artist_of_track[1:]),
        *(part[1:] for part in vocab.audio_table(model.dims["audio_embedding"])),
    )
    track_out = track_out.numpy()
    w = model.session_weights.detach().numpy()
    for lo in range(0, len(q), PAIR_BATCH):
        sel = slice(lo, lo + PAIR_BATCH)
        signals = sum(
            float(wi) * m[sel].toarray() for wi, m in zip(w, pairs.indicators, strict=True)
        )
        yield sel, q[sel] @ track_out.T, signals


def validate(
    model: ListenerModel, pairs: ValidationPairs, vocab: Vocab, k: int = 20
) -> dict[str, float]:
    """HR@k / MRR@k on the validation pairs: GRU + session indicators (as trained), GRU alone,
    and the indicators alone (the GRU's contribution is the difference)."""
    ranks: dict[str, list[metrics.Ranks]] = {"hr": [], "gru": [], "signals": []}
    for sel, gru, signals in pair_scores(model, pairs, vocab):
        for name, scores in (("hr", gru + signals), ("gru", gru), ("signals", signals)):
            ranks[name].append(metrics.ranks(np.asarray(scores, np.float32), pairs.targets[sel]))
    out: dict[str, float] = {}
    for name, prefix in (("hr", ""), ("gru", "gru_"), ("signals", "signals_")):
        r = metrics.Ranks.concat(ranks[name])
        out[f"{prefix}hr"] = metrics.hit_rate(r, k)
        out[f"{prefix}mrr"] = metrics.mrr(r, k)
    out["pairs"] = len(pairs.targets)
    return out
