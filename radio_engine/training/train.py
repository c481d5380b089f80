"""`radio-engine train`: the listener GRU on real sessions (GRU4Rec-style), then the export.

Recipe (GRU4Rec, Hidasi et al. 2016/2018): session-parallel mini-batches, here over whole
listener histories (the state lives across sessions; a slot resets to h0 only when it moves to
another listener); sampled softmax over in-batch targets plus popularity-sampled negatives with
the log-q correction; truncated back-propagation every `bptt` steps. Epochs are chosen on a
validation split (the last day of each fold); the blend of GRU and session signals is tuned on
the same split; then the model is refit on everything for the chosen epochs and exported.

Feedback: every event is an input with its feedback one-hot, but a skip or a dislike is not
what the listener wanted next, so such a target gets no loss (nor counts in validation): the
model learns to predict accepted tracks. --no-feedback (the ablation) encodes every event as a
play and makes every next event a target. On data where every event is a play (30Music) both
give the same pairs and the same loss.

Training stops on epoch and step counts only, so the same data, seed and command give the same
model on any machine under any load. --max-minutes is an opt-in guard: it ends a phase between
epochs, and the console, report.md and the manifest then say so and what it cost.
"""

from __future__ import annotations

import argparse
import heapq
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from radio_engine.model.inputs import CONTEXT_NAMES, FEEDBACK_INDEX, context_features
from radio_engine.settings import Settings
from radio_engine.training import metrics
from radio_engine.training.baselines import artist_tracks, session_indicators
from radio_engine.training.data import Events, data_sha256, load_events, split_last_days
from radio_engine.training.model import ListenerModel, reset_slots
from radio_engine.training.pairs import EvalCatalog, Pairs, SessionLog
from radio_engine.training.progress import Progress
from radio_engine.training.session_memory import INDICATORS, SessionMemory

NEW_SESSION = CONTEXT_NAMES.index("new_session")
# Training settings, chosen on a validation split of the 30Music development file (the
# nested split inside /tmp/split/train.csv): see the README's "Model" section.
#: dropout of the listener GRU's step input and head while training
DROPOUT = 0.5
#: share of input events whose track id is hidden while training
ID_DROPOUT = 0.3
#: one vector per track for input and output (GRU4Rec's "constrained embedding")
TIED_TABLES = True
LEARNING_RATE = 2e-3
#: feedback that says the listener did not want the track: never a training or validation target
REJECTED = frozenset({"skip", "dislike"})
#: report.md's last section: the only lines that change from run to run (wall-clock times)
TIMING_HEADER = "## Timing"


@dataclass
class Vocab:
    """Tracks and artists the model learns: index = position + 1 (0 is the unknown vector)."""

    track_ids: list[str]
    track_artists: list[str]
    artists: list[str]
    popularity: np.ndarray
    #: audio embedding of each track whose audio is known (the clips given to --audio)
    track_audio: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def build(cls, events: Events, track_audio: dict[str, np.ndarray] | None = None) -> Vocab:
        counts = Counter(events.track_id.tolist())
        artist_of: dict[str, str] = {}
        for t, a in zip(events.track_id.tolist(), events.artist_id.tolist(), strict=True):
            artist_of.setdefault(t, a)
        tracks = sorted(counts, key=lambda t: (-counts[t], t))
        artists = sorted({a for a in artist_of.values() if a})
        return cls(
            tracks,
            [artist_of[t] for t in tracks],
            artists,
            np.array([counts[t] for t in tracks], dtype=np.float32),
            dict(track_audio or {}),
        )

    def audio_table(self, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(audio [V + 1, dim], has_audio [V + 1]) by vocabulary index; row 0 (unknown) empty."""
        audio = np.zeros((len(self.track_ids) + 1, dim), np.float32)
        has = np.zeros(len(self.track_ids) + 1, np.float32)
        for i, t in enumerate(self.track_ids):
            if t in self.track_audio:
                audio[i + 1], has[i + 1] = self.track_audio[t], 1.0
        return torch.from_numpy(audio), torch.from_numpy(has)

    @property
    def track_index(self) -> dict[str, int]:
        return {t: i + 1 for i, t in enumerate(self.track_ids)}

    @property
    def artist_index(self) -> dict[str, int]:
        return {a: i + 1 for i, a in enumerate(self.artists)}

    @cached_property
    def artist_of_track(self) -> np.ndarray:
        """Artist index by track index (0 for the unknown track), built once per vocabulary.

        Cached on the vocabulary itself: a cache keyed by id() could hand a later vocabulary
        that reuses a freed one's address the wrong artists."""
        aix = self.artist_index
        return np.array([0, *(aix.get(a, 0) for a in self.track_artists)], dtype=np.int64)


@dataclass
class Encoded:
    """Events as model inputs, grouped into one time-ordered sequence per listener."""

    ids: np.ndarray  # int64 [n] track index (0 unknown)
    artists: np.ndarray  # int64 [n]
    context: np.ndarray  # float32 [n, C]
    users: list[np.ndarray]  # row indices of each listener's events, in time order
    order: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    #: bool [n]: the event may be a target (not a skip or dislike; all True without feedback)
    accepted: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))


def accepted_events(events: Events) -> np.ndarray:
    """bool [n] in file order: the listener accepted the track (anything but skip/dislike)."""
    return ~np.isin(events.event, list(REJECTED))


def encode(events: Events, vocab: Vocab, feedback: bool = True) -> Encoded:
    """Inputs for every event (the shared context_features) and per-listener sequences.

    feedback=False (the ablation): every event is encoded as a play and may be a target."""
    order = np.lexsort((events.ts, events.user_id))  # stable: equal timestamps keep file order
    user = events.user_id[order]
    ts = events.ts[order]
    gap = np.full(len(order), np.nan)
    same = np.zeros(len(order), dtype=bool)
    same[1:] = user[1:] == user[:-1]
    gap[1:][same[1:]] = (ts[1:] - ts[:-1])[same[1:]]
    if feedback:
        kinds = np.array([FEEDBACK_INDEX.get(e, 0) for e in events.event[order]], np.int64)
        accepted = accepted_events(events)[order]
    else:
        kinds, accepted = np.zeros(len(order), np.int64), np.ones(len(order), bool)
    context = context_features(kinds, np.full(len(order), np.nan), gap, ts)
    tix, aix = vocab.track_index, vocab.artist_index
    ids = np.array([tix.get(t, 0) for t in events.track_id[order]], dtype=np.int64)
    artists = np.array([aix.get(a, 0) for a in events.artist_id[order]], dtype=np.int64)
    starts = np.flatnonzero(~same)
    bounds = [*starts.tolist(), len(order)]
    users = [np.arange(bounds[i], bounds[i + 1]) for i in range(len(starts))]
    return Encoded(ids, artists, context, users, order, accepted)


def session_parallel(users: list[np.ndarray], batch: int, seed: int) -> Any:
    """Yield (rows [B], targets [B], reset [B]) steps: each slot walks one listener's events.

    rows[i] is slot i's input event and targets[i] the next event of the same listener; -1 marks
    an idle slot. reset[i] is True exactly when slot i starts a new listener.
    """
    rng = np.random.default_rng(seed)
    queue = [u for u in (users[i] for i in rng.permutation(len(users))) if len(u) >= 2]
    slots: list[np.ndarray | None] = [None] * batch
    pos = np.zeros(batch, dtype=np.int64)
    nxt = 0
    while True:
        reset = np.zeros(batch, dtype=bool)
        for i in range(batch):
            if slots[i] is None or pos[i] + 1 >= len(slots[i]):  # type: ignore[arg-type]
                if nxt < len(queue):
                    slots[i], pos[i], reset[i] = queue[nxt], 0, True
                    nxt += 1
                else:
                    slots[i] = None
        if all(s is None for s in slots):
            return
        rows = np.array([s[pos[i]] if s is not None else -1 for i, s in enumerate(slots)])
        targets = np.array([s[pos[i] + 1] if s is not None else -1 for i, s in enumerate(slots)])
        yield rows, targets, reset
        pos += 1


def session_parallel_steps(users: list[np.ndarray], batch: int, seed: int) -> int:
    """How many steps session_parallel(users, batch, seed) yields, without walking the events.

    Each listener fills the first free slot for len - 1 steps, in the same shuffled order, so
    the count is when the last slot frees (a progress total that ends at 100 %)."""
    rng = np.random.default_rng(seed)
    free = [0] * batch
    for i in rng.permutation(len(users)):
        if len(users[i]) >= 2:
            heapq.heappush(free, heapq.heappop(free) + len(users[i]) - 1)
    return max(free)


def train_epoch(
    model: ListenerModel,
    data: Encoded,
    vocab: Vocab,
    opt: torch.optim.Optimizer,
    batch: int,
    negatives: int,
    bptt: int,
    seed: int,
    progress: bool,
    id_dropout: float = 0.0,
    desc: str = "train",
) -> float:
    """One pass over every listener's history; returns the mean loss.

    Only targets that data.accepted marks count in the loss (a skipped or disliked next track is
    no target), though every event is an input. Negatives: the other slots' targets and popularity-sampled tracks (log-q corrected). The
    session indicators (session_memory) are added to every logit with learned weights.

    id_dropout: share of input events, and of candidates, whose track id is hidden (index 0),
    so the GRU also learns to read and to score a track by its artist and audio, as it must
    for tracks new to it."""
    model.train()
    ids, artists = torch.from_numpy(data.ids), torch.from_numpy(data.artists)
    context = torch.from_numpy(data.context)
    accepted = torch.from_numpy(data.accepted)
    audio, has_audio = vocab.audio_table(model.dims["audio_embedding"])
    pop = vocab.popularity**0.75
    sample_p = torch.from_numpy(np.concatenate([[0.0], pop / pop.sum()]).astype(np.float32))
    in_batch_logq = torch.log(
        torch.from_numpy(np.concatenate([[1.0], vocab.popularity])) / vocab.popularity.sum() * batch
    )
    sampler = torch.Generator().manual_seed(seed)
    h = model.initial_state(batch).detach()
    memory = SessionMemory(batch)
    losses: list[float] = []
    pending: list[torch.Tensor] = []
    shown = Progress(desc, session_parallel_steps(data.users, batch, seed), enabled=progress)
    for step, (rows, targets, reset) in enumerate(session_parallel(data.users, batch, seed)):
        live = torch.from_numpy(rows >= 0)
        r = torch.from_numpy(np.maximum(rows, 0))
        t = torch.from_numpy(np.maximum(targets, 0))
        h = reset_slots(h, model.h0, torch.from_numpy(reset))
        memory.observe(ids[r], artists[r], torch.from_numpy(reset) | (context[r, NEW_SESSION] > 0))
        input_ids = ids[r]
        if id_dropout:
            drop = torch.rand(len(r), generator=sampler) < id_dropout
            input_ids = input_ids.masked_fill(drop, 0)
        track_in, _ = model.tracks(input_ids, artists[r], audio[ids[r]], has_audio[ids[r]])
        h, q = model.step(torch.cat([track_in, context[r]], dim=-1), h)
        h = torch.where(live.unsqueeze(-1), h, h.detach())
        target_ids = ids[t]
        sampled = torch.multinomial(sample_p, negatives, replacement=True, generator=sampler)
        cand = torch.cat([target_ids, sampled])
        cand_artists = torch.cat(
            [artists[t], torch.from_numpy(vocab.artist_of_track[sampled.numpy()])]
        )
        out_ids = cand
        if id_dropout:  # a candidate scored without its id, as a track new to the model is
            out_ids = cand.masked_fill(torch.rand(len(cand), generator=sampler) < id_dropout, 0)
        _, out = model.tracks(out_ids, cand_artists, audio[cand], has_audio[cand])
        logits = q @ out.T + memory.indicators(cand, cand_artists) @ model.session_weights
        logq = torch.cat(
            [in_batch_logq[target_ids], torch.log(sample_p[sampled] * negatives + 1e-12)]
        )
        logits = logits - logq
        hit = cand.unsqueeze(0) == target_ids.unsqueeze(1)
        hit[torch.arange(len(r)), torch.arange(len(r))] = False
        logits = logits.masked_fill(hit, -1e9)
        valid = live & (target_ids > 0) & accepted[t]
        if valid.any():
            pending.append(nn.functional.cross_entropy(logits[valid], torch.arange(len(r))[valid]))
        if (step + 1) % bptt == 0 and pending:
            loss = torch.stack(pending).mean()
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            losses.append(loss.item())
            pending = []
            h = h.detach()
        shown.update(**({"loss": float(np.mean(losses[-100:]))} if losses else {}))
    shown.close()
    return float(np.mean(losses)) if losses else float("nan")


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
    per pair, sparse [P, V] matrices of the session indicators (INDICATORS
    order), so the in-training score q . track_out + session_weights . indicators is ranked.
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
        pairs = Pairs.from_log(SessionLog.from_events(valid, catalog))
        pairs = pairs.take(accepted_events(valid)[pairs.target_event])
        by_artist = artist_tracks(catalog.artist_codes, catalog.artist_names.size)
        n_vocab = len(vocab.track_ids)
        parts: list[list[sp.csr_matrix]] = [[], [], []]
        for lo in range(0, pairs.size, 1024):
            s = session_indicators(pairs.prefixes(slice(lo, lo + 1024)), by_artist)
            for i, name in enumerate(("same_last_artist", "in_session_artist", "in_session_track")):
                parts[i].append(sp.csr_matrix(s[name][:, :n_vocab].astype(np.float32)))
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
    1024 pairs at a time; the sum is the score the model trains with."""
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
    for lo in range(0, len(q), 1024):
        sel = slice(lo, lo + 1024)
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


@dataclass(frozen=True)
class EarlyStop:
    """A phase that the opt-in --max-minutes guard ended between epochs, and what that cost."""

    phase: str
    after_epoch: int
    epochs: int
    limit_minutes: float

    @property
    def skipped(self) -> int:
        """Epochs of the phase that never ran."""
        return self.epochs - self.after_epoch

    def describe(self) -> str:
        """One plain sentence for the console and report.md."""
        return (
            f"{self.phase} STOPPED EARLY by --max-minutes {self.limit_minutes:g}: after epoch "
            f"{self.after_epoch} of {self.epochs}, {self.skipped} epoch(s) skipped"
        )

    def as_dict(self) -> dict[str, Any]:
        """The same facts for the manifest's metrics."""
        return {
            "phase": self.phase,
            "after_epoch": self.after_epoch,
            "epochs": self.epochs,
            "epochs_skipped": self.skipped,
            "limit_minutes": self.limit_minutes,
        }


def fit(
    events: Events,
    vocab: Vocab,
    *,
    epochs: int,
    seed: int,
    id_only: bool,
    progress: bool,
    deadline: float | None = None,
    valid: ValidationPairs | None = None,
    log: list[dict[str, Any]] | None = None,
    dropout: float = DROPOUT,
    phase: str = "train",
    feedback: bool = True,
) -> tuple[ListenerModel, int]:
    """Train a fresh model for `epochs`, validating after each; returns (model, epochs run).

    With `valid`, the epoch with the best validation HR@20 is kept. `deadline` (monotonic
    seconds, opt-in) is only looked at between epochs: an epoch always runs whole, so a model
    trained to a given epoch is the same whatever the machine's speed. feedback=False: the
    ablation, every event a play and a target (encode())."""
    torch.manual_seed(seed)
    model = ListenerModel(
        len(vocab.track_ids), len(vocab.artists), id_only=id_only, dropout=dropout, tied=TIED_TABLES
    )
    rest = [p for name, p in model.named_parameters() if name != "session_weights"]
    opt = torch.optim.Adam(
        [
            {"params": rest},
            # a few scalars: a larger step so they settle within the first epoch
            {"params": [model.session_weights], "lr": 0.05},
        ],
        lr=LEARNING_RATE,
    )
    data = encode(events, vocab, feedback)
    best_state, best_hr = None, -1.0
    fit_started = time.monotonic()
    ran = 0
    for epoch in range(epochs):
        started = time.monotonic()
        loss = train_epoch(
            model,
            data,
            vocab,
            opt,
            batch=64,
            negatives=1024,
            bptt=8,
            seed=seed + epoch,
            progress=progress,
            id_dropout=ID_DROPOUT,
            desc=f"{phase} epoch {epoch + 1}/{epochs}",
        )
        entry: dict[str, Any] = {"epoch": epoch + 1, "loss": loss}
        if valid is not None:
            scores = validate(model, valid, vocab)
            entry.update({f"valid_{name}": v for name, v in scores.items() if name != "pairs"})
            if scores["hr"] > best_hr:
                best_hr, best_state = (
                    scores["hr"],
                    {k: v.clone() for k, v in model.state_dict().items()},
                )
        entry["session_weights"] = [round(float(w), 3) for w in model.session_weights.detach()]
        entry["seconds"] = time.monotonic() - started  # with validation
        ran = epoch + 1
        if log is not None:
            log.append(entry)
        if progress:
            figures = ", ".join(
                f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                for k, v in entry.items()
                if k not in ("epoch", "seconds")
            )
            print(
                f"  {phase} epoch {ran}/{epochs}: {figures}; "
                f"{entry['seconds']:.0f} s, {time.monotonic() - fit_started:.0f} s elapsed",
                flush=True,
            )
        if deadline is not None and time.monotonic() > deadline:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return model.eval(), ran


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Train on --events, choose epochs and blend on a validation split, refit, export to --out."""

    torch.set_num_threads(2)
    started = time.monotonic()
    limit = args.max_minutes
    deadline = None if limit is None else started + limit * 60
    out = Path(args.out)
    events = load_events(args.events)
    if args.valid:
        train, valid = events, load_events(args.valid)
    else:
        train, valid = split_last_days(events, 1.0)
    print(
        f"train: {len(train)} events for training, {len(valid)} for validation "
        f"({len(np.unique(train.user_id))} listeners)",
        flush=True,
    )
    audio_started = time.monotonic()
    audio_module, audio_history, track_audio = _audio(args)
    audio_seconds = time.monotonic() - audio_started
    vocab = Vocab.build(train, track_audio)
    feedback = not args.no_feedback
    trained_on = training_data(Path(args.events), events, feedback)
    print(f"train: {trained_on['sentence']}", flush=True)
    epochs = args.epochs
    history: list[dict[str, Any]] = []
    stops: list[EarlyStop] = []

    def note_stop(phase: str, ran: int, planned: int) -> None:
        """Record and print a phase that the time limit ended before its last epoch."""
        if limit is not None and ran < planned:
            stops.append(EarlyStop(phase, ran, planned, limit))
            print(f"train: {stops[-1].describe()}", flush=True)

    print(
        f"train: phase 1, {epochs} epochs on the training split, validated each epoch"
        + ("" if limit is None else f" (--max-minutes {limit:g}: may stop between epochs)"),
        flush=True,
    )
    model, ran = fit(
        train,
        vocab,
        epochs=epochs,
        seed=args.seed,
        id_only=args.id_only,
        progress=True,
        deadline=deadline,
        valid=ValidationPairs.build(train, valid, vocab, feedback),
        log=history,
        phase="phase 1",
        feedback=feedback,
    )
    note_stop("phase 1 (epoch choice)", ran, epochs)
    best = max(history, key=lambda e: e.get("valid_hr", -1))
    spec_extra: dict[str, Any] = {"id_only": bool(args.id_only), "feedback": feedback}
    blend_info: dict[str, Any] = {}
    tmp_dir = out.with_name(out.name + ".phase1")
    export_with_vocab(model, tmp_dir, vocab, audio_module)
    try:
        from radio_engine.model.runtime import ServingModel
        from radio_engine.training.evaluate import tune_blend_weights

        print(
            "train: tuning the served blend (GRU + session signals) on the validation split",
            flush=True,
        )
        blend_info = tune_blend_weights(
            train, valid, k=20, model=ServingModel(tmp_dir), progress=sys.stderr.isatty()
        )
        spec_extra.update(blend=blend_info["blend"], blend_only=blend_info["blend_only"])
    finally:
        import shutil

        shutil.rmtree(tmp_dir, ignore_errors=True)
    final_epochs = int(best["epoch"])
    print(
        f"train: phase 2, refit on all {len(events)} events for {final_epochs} epochs", flush=True
    )
    full_vocab = Vocab.build(events, track_audio) if not args.valid else vocab
    final, ran = fit(
        events if not args.valid else train,
        full_vocab,
        epochs=final_epochs,
        seed=args.seed,
        id_only=args.id_only,
        progress=True,
        deadline=deadline,
        phase="phase 2",
        feedback=feedback,
    )
    note_stop("phase 2 (refit)", ran, final_epochs)
    summary = {
        "valid_hr@20": best.get("valid_hr"),
        "valid_mrr@20": best.get("valid_mrr"),
        "valid_hr@20_gru_alone": best.get("valid_gru_hr"),
        "valid_hr@20_indicators_alone": best.get("valid_signals_hr"),
        "valid_blend": blend_info.get("valid", {}),
        "epochs": ran,
        "session_weights": dict(
            zip(INDICATORS, final.session_weights.detach().tolist(), strict=True)
        ),
        "audio_steps": args.audio_steps if args.audio else 0,
        "max_minutes": limit,
        "stopped_early": [stop.as_dict() for stop in stops],
        "training_data": trained_on,
    }
    export_with_vocab(
        final,
        out,
        full_vocab,
        audio_module,
        spec_extra=spec_extra,
        data_sha256=data_sha256(args.events),
        metrics=summary,
        trained=True,
    )
    _save_rules(events if not args.valid else train, out)
    timing = {"total": time.monotonic() - started, "audio": audio_seconds}
    _report(out, history, audio_history, summary, stops, timing, len(train), len(valid))
    print(
        f"train: model written to {out} in {(time.monotonic() - started) / 60:.1f} min; "
        f"validation HR@20 {best.get('valid_hr', 0):.4f} (GRU + session indicators)"
        + "".join(f"; {stop.describe()}" for stop in stops),
        flush=True,
    )
    return 0


def training_data(path: Path, events: Events, feedback: bool) -> dict[str, Any]:
    """What the model learned feedback from, for the console, manifest and report.md: the data
    (SIMULATED when `simulate` labelled its folder), its feedback counts, with or without."""
    from radio_engine.training.simulated_listeners import LABEL, LABEL_FILE

    simulated = (path.parent / LABEL_FILE).is_file()
    kinds, counts = np.unique(events.event, return_counts=True)
    events_by_kind = {str(k): int(n) for k, n in zip(kinds, counts, strict=True)}
    rejected = sum(n for k, n in events_by_kind.items() if k in REJECTED)
    data = f"{LABEL} listeners ({path})" if simulated else str(path)
    if not feedback:
        how = "no (--no-feedback: every event read as a play, every next event a target)"
    elif rejected:
        how = f"yes ({rejected} skip/dislike events are inputs but never targets)"
    else:
        how = "yes, but every event is a play: nothing to mask, the same pairs as without"
    sentence = f"Trained with feedback: {how}. Data: {data}; events {events_by_kind}."
    return {
        "with_feedback": feedback,
        "data": data,
        "simulated": simulated,
        "events": events_by_kind,
        "sentence": sentence,
    }


def export_with_vocab(
    model: ListenerModel, out: Path, vocab: Vocab, audio_module: Any, **extra: Any
) -> Path:
    """export_model with the vocabulary's tracks, artists, popularity and audio."""
    from radio_engine.training.export import export_model

    return export_model(
        model,
        out,
        track_ids=vocab.track_ids,
        artist_ids=vocab.track_artists,
        artist_vocab=vocab.artists,
        popularity=vocab.popularity,
        audio_module=audio_module,
        track_audio=vocab.track_audio,
        **extra,
    )


def _audio(args: argparse.Namespace) -> tuple[Any, list[float], dict[str, np.ndarray]]:
    """With --audio: the audio encoder trained on the clips for --audio-steps (no labels used)
    and the embedding of every clip by track id (--metadata or a metadata.csv in the folder
    names them, as produce-audio does; otherwise every audio file, named by its stem)."""
    if not args.audio:
        return None, [], {}
    from radio_engine.audio.decode import load_audio_file
    from radio_engine.audio.features import track_features
    from radio_engine.audio.files import find_tracks, read_metadata
    from radio_engine.training.audio_model import embed_clips, train_audio_encoder

    folder = Path(args.audio)
    metadata = Path(args.metadata) if getattr(args, "metadata", None) else folder / "metadata.csv"
    # a metadata.csv (--metadata, or in the folder) names the clips; other files are not used
    tracks = read_metadata(metadata, metadata.parent) if metadata.is_file() else find_tracks(folder)
    print(f"train: audio features of {len(tracks)} clips", flush=True)
    shown = Progress("audio features", len(tracks))
    features = []
    for t in tracks:
        features.append(track_features(*load_audio_file(t.path)))
        shown.update()
    shown.close()
    print(f"train: audio encoder, {args.audio_steps} steps", flush=True)
    module, history = train_audio_encoder(features, steps=args.audio_steps)
    embeddings = embed_clips(module, features)
    return module, history["loss"], {t.track_id: e for t, e in zip(tracks, embeddings, strict=True)}


def _save_rules(events: Events, out: Path) -> None:
    """The sequential-rules table over the model's track table (served by the selector)."""
    from radio_engine.model.runtime import ServingModel
    from radio_engine.model.transitions import save_transitions
    from radio_engine.training.rules import build_rules

    model = ServingModel(out)
    save_transitions(out, build_rules(events, model.tracks.track_ids))


def _report(
    out: Path,
    history: list[dict[str, Any]],
    audio_loss: list[float],
    summary: dict[str, Any],
    stops: list[EarlyStop],
    timing: dict[str, float],
    n_train: int,
    n_valid: int,
) -> None:
    """training.png (curves) and report.md / report.json next to the model.

    Wall-clock figures go only under "timing" (report.json) and the last section of report.md,
    "## Timing", so everything before it is the same for the same data, seed and command."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3 if audio_loss else 2, figsize=(13, 3.6))
    epochs = [h["epoch"] for h in history]
    axes[0].plot(epochs, [h["loss"] for h in history], marker="o")
    axes[0].set(title="listener GRU: training loss", xlabel="epoch", ylabel="sampled softmax")
    for key, label in (
        ("valid_hr", "GRU + session indicators"),
        ("valid_signals_hr", "indicators alone"),
        ("valid_gru_hr", "GRU alone"),
    ):
        axes[1].plot(epochs, [h.get(key, np.nan) for h in history], marker="o", label=label)
    axes[1].set(title="validation HR@20", xlabel="epoch")
    axes[1].legend()
    if audio_loss:
        axes[2].plot(audio_loss)
        axes[2].set(title="audio encoder: InfoNCE", xlabel="step")
    fig.tight_layout()
    fig.savefig(out / "training.png", dpi=110)
    epoch_seconds = [h["seconds"] for h in history]
    report = {
        "train_events": n_train,
        "valid_events": n_valid,
        "history": [{k: v for k, v in h.items() if k != "seconds"} for h in history],
        "metrics": summary,
        "timing": {"seconds": timing, "phase1_epoch_seconds": epoch_seconds},
    }
    (out / "report.json").write_text(json.dumps(report, indent=2, default=float))
    nan = float("nan")
    limit = summary.get("max_minutes")
    lines = [
        "# Training report",
        "",
        f"{n_train} training / {n_valid} validation events; refit: {summary['epochs']} epoch(s); "
        f"audio encoder: {summary.get('audio_steps', 0)} steps.",
        "",
        "Stopped on epoch and step counts only."
        if limit is None
        else f"Time limit --max-minutes {limit:g} (checked between epochs only).",
        "",
        summary["training_data"]["sentence"],
    ]
    for stop in stops:
        lines += ["", f"**{stop.describe()}.**"]
    lines += [
        "",
        "Validation HR@20 / MRR@20 on next-track pairs of the validation sessions: the GRU with",
        "the session indicators it trains beside (what epochs are chosen by), each part alone.",
        "",
        "| epoch | loss | HR@20 | MRR@20 | HR@20 GRU alone | HR@20 indicators alone |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {h['epoch']} | {h['loss']:.4f} | {h.get('valid_hr', nan):.4f} | "
        f"{h.get('valid_mrr', nan):.4f} | {h.get('valid_gru_hr', nan):.4f} | "
        f"{h.get('valid_signals_hr', nan):.4f} |"
        for h in history
    ]
    lines += [
        "",
        f"Served blend tuned on validation: `{json.dumps(summary.get('valid_blend', {}))}`",
        "(hr_served vs hr_served_no_gru: the same pairs with the GRU switched off).",
        "",
        "![curves](training.png)",
        "",
        TIMING_HEADER,
        "",
        f"Wall clock on this machine (varies with load; nothing above depends on it): "
        f"{timing['total'] / 60:.1f} min in all, audio features and encoder {timing['audio']:.0f} s, "
        "phase-1 epochs (train + validation) "
        + ", ".join(f"{s:.0f}" for s in epoch_seconds)
        + " s.",
    ]
    (out / "report.md").write_text("\n".join(lines) + "\n")
