"""The training loop: epochs of session-parallel steps, truncated BPTT, validation after each.

One step (`train_epoch`): every slot's event goes through the track encoder (its id hidden for a
share of events, so the GRU also reads tracks by artist and audio) and the GRU; the query scores
the in-batch targets and the sampled negatives (some scored without their id, as a new track
is; with config.indicators_in_loss, the ablation, plus learned weights times the session
indicators); the sampled softmax (loss.py) of the rows whose target may be learned joins the
pending losses, and every `bptt` steps their mean is back-propagated. A fresh model's artist
vectors start from session co-occurrence (cooccurrence.py), and the learning rate falls along a
cosine over the planned epochs. Only epoch and step counts end a loop; the opt-in deadline is
looked at between epochs only, so a model trained to a given epoch is the same on any machine.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from radio_engine.training.batching import session_parallel, session_parallel_steps
from radio_engine.training.config import TrainConfig
from radio_engine.training.cooccurrence import artist_start_vectors
from radio_engine.training.data import Events
from radio_engine.training.encoding import NEW_SESSION, Encoded, Vocab, encode
from radio_engine.training.loss import SampledSoftmax
from radio_engine.training.model import ListenerModel, reset_slots
from radio_engine.training.progress import Progress
from radio_engine.training.session_memory import SessionMemory
from radio_engine.training.validation import ValidationPairs, validate

#: standard deviation of the co-occurrence start vectors: that of the random start they replace
ARTIST_START_SPREAD = 0.05


def new_model(
    vocab: Vocab, config: TrainConfig, events: Events | None = None
) -> tuple[ListenerModel, torch.optim.Optimizer]:
    """A fresh model (seeded by config.seed) and its optimiser; with `events` and
    config.artist_init "cooccurrence", the artist vectors start from their sessions."""
    torch.manual_seed(config.seed)
    model = ListenerModel(
        len(vocab.track_ids),
        len(vocab.artists),
        id_only=config.id_only,
        dropout=config.dropout,
        tied=config.tied_tables,
    )
    if events is not None and config.artist_init == "cooccurrence" and not config.id_only:
        _start_artists_from_sessions(model, events, vocab, config)
    rest = [p for name, p in model.named_parameters() if name != "session_weights"]
    opt = torch.optim.Adam(
        [
            {"params": rest},
            # a few scalars: a larger step so they settle within the first epoch
            {"params": [model.session_weights], "lr": config.session_weights_learning_rate},
        ],
        lr=config.learning_rate,
    )
    return model, opt


def _start_artists_from_sessions(
    model: ListenerModel, events: Events, vocab: Vocab, config: TrainConfig
) -> None:
    """Artist input (and, tied, output) vectors from within-session co-occurrence; the unknown
    artist keeps its random start."""
    table = model.tracks.artist_in.weight
    vectors = artist_start_vectors(
        events, vocab, table.shape[1], config.cooccurrence_window, ARTIST_START_SPREAD
    )
    if vectors is not None:
        with torch.no_grad():
            table[1:] = torch.from_numpy(vectors[1:])


def learning_rate_at(config: TrainConfig, epoch: int) -> float:
    """The learning rate of an epoch (0-based): a cosine from config.learning_rate down to
    final_learning_rate_share of it at the last epoch of the schedule."""
    span = config.schedule_epochs or config.epochs
    share = config.final_learning_rate_share
    if span <= 1 or share == 1.0:
        return config.learning_rate
    progress = min(epoch, span - 1) / (span - 1)
    return config.learning_rate * (share + (1 - share) * 0.5 * (1 + math.cos(math.pi * progress)))


def _set_learning_rate(opt: torch.optim.Optimizer, config: TrainConfig, epoch: int) -> None:
    """The schedule's rate on the model's weights (the indicator weights keep their own)."""
    opt.param_groups[0]["lr"] = learning_rate_at(config, epoch)


def _hide_ids(ids: torch.Tensor, share: float, generator: torch.Generator) -> torch.Tensor:
    """The ids with a random share replaced by 0 (unknown), as for a track new to the model."""
    if not share:
        return ids
    return ids.masked_fill(torch.rand(len(ids), generator=generator) < share, 0)


def train_epoch(
    model: ListenerModel,
    data: Encoded,
    vocab: Vocab,
    opt: torch.optim.Optimizer,
    config: TrainConfig,
    *,
    seed: int,
    progress: bool,
    desc: str = "train",
) -> float:
    """One pass over every listener's history; returns the mean loss.

    Only targets that data.accepted marks count in the loss (a skipped or disliked next track is
    no target), though every event is an input. With config.indicators_in_loss the session
    indicators (session_memory) see the same events and join every logit with learned weights;
    without, the GRU learns the next track alone."""
    model.train()
    batch = config.batch
    ids, artists = torch.from_numpy(data.ids), torch.from_numpy(data.artists)
    context = torch.from_numpy(data.context)
    accepted = torch.from_numpy(data.accepted)
    audio, has_audio = vocab.audio_table(model.dims["audio_embedding"])
    softmax = SampledSoftmax(vocab.popularity, batch, config.negatives, config.sampling_exponent)
    sampler = torch.Generator().manual_seed(seed)
    h = model.initial_state(batch).detach()
    memory = SessionMemory(batch, config.session_window) if config.indicators_in_loss else None
    losses: list[float] = []
    pending: list[torch.Tensor] = []
    shown = Progress(desc, session_parallel_steps(data.users, batch, seed), enabled=progress)
    for step, (rows, targets, reset) in enumerate(session_parallel(data.users, batch, seed)):
        live = torch.from_numpy(rows >= 0)
        r_np, t_np = np.maximum(rows, 0), np.maximum(targets, 0)
        r, t = torch.from_numpy(r_np), torch.from_numpy(t_np)
        # the inputs: each slot's event, the state reset where the slot's listener changed
        h = reset_slots(h, model.h0, torch.from_numpy(reset))
        new_session = reset | (data.context[r_np, NEW_SESSION] > 0)
        if memory is not None:
            memory.observe(
                data.ids[r_np], data.artists[r_np], data.accepted[r_np], new_session, reset
            )
        input_ids = _hide_ids(ids[r], config.id_dropout, sampler)
        track_in, _ = model.tracks(input_ids, artists[r], audio[ids[r]], has_audio[ids[r]])
        h, q = model.step(torch.cat([track_in, context[r]], dim=-1), h)
        h = torch.where(live.unsqueeze(-1), h, h.detach())
        # the candidates: in-batch targets and sampled negatives, scored as the blend would
        target_ids = ids[t]
        sampled = softmax.draw(sampler)
        cand = torch.cat([target_ids, sampled])
        cand_artists = torch.cat(
            [artists[t], torch.from_numpy(vocab.artist_of_track[sampled.numpy()])]
        )
        out_ids = _hide_ids(cand, config.id_dropout, sampler)
        _, out = model.tracks(out_ids, cand_artists, audio[cand], has_audio[cand])
        logits = q @ out.T
        if memory is not None:  # config.indicators_in_loss
            indicators = torch.from_numpy(memory.indicators(cand.numpy(), cand_artists.numpy()))
            logits = logits + indicators @ model.session_weights
        # the loss: rows whose target is a known track the listener accepted
        learn = live & (target_ids > 0) & accepted[t]
        loss = softmax.loss(logits, target_ids, sampled, learn)
        if loss is not None:
            pending.append(loss)
        if (step + 1) % config.bptt == 0 and pending:
            losses.append(_backward(model, opt, pending, config.grad_clip))
            pending = []
            h = h.detach()
        shown.update(**({"loss": float(np.mean(losses[-100:]))} if losses else {}))
    shown.close()
    return float(np.mean(losses)) if losses else float("nan")


def _backward(
    model: ListenerModel, opt: torch.optim.Optimizer, pending: list[torch.Tensor], clip: float
) -> float:
    """One optimiser step on the mean of the pending losses; returns that mean."""
    loss = torch.stack(pending).mean()
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    return loss.item()


@dataclass(frozen=True)
class Fitted:
    """What `fit` trained: the model at its kept epoch, the epochs it ran, and with validation
    the kept epoch's log entry (best config.choice_key; None without validation: the last)."""

    model: ListenerModel
    epochs_run: int
    kept: dict[str, Any] | None


def fit(
    events: Events,
    vocab: Vocab,
    config: TrainConfig,
    *,
    progress: bool,
    deadline: float | None = None,
    valid: ValidationPairs | None = None,
    log: list[dict[str, Any]] | None = None,
    phase: str = "train",
) -> Fitted:
    """Train a fresh model for config.epochs, validating after each (see Fitted).

    With `valid`, the epoch with the best validation HR@k (config.choice_key) is kept.
    `deadline` (monotonic seconds, opt-in) is only looked at between epochs.
    config.feedback=False: the ablation, every event a play and a target (encode())."""
    model, opt = new_model(vocab, config, events)
    data = encode(events, vocab, config.feedback)
    best_state: dict[str, torch.Tensor] | None = None
    kept: dict[str, Any] | None = None
    fit_started = time.monotonic()
    ran = 0
    for epoch in range(config.epochs):
        started = time.monotonic()
        _set_learning_rate(opt, config, epoch)
        loss = train_epoch(
            model,
            data,
            vocab,
            opt,
            config,
            seed=config.seed + epoch,
            progress=progress,
            desc=f"{phase} epoch {epoch + 1}/{config.epochs}",
        )
        entry: dict[str, Any] = {"epoch": epoch + 1, "loss": loss}
        if valid is not None:
            scores = validate(model, valid, vocab, config.k)
            entry.update({f"valid_{name}": v for name, v in scores.items() if name != "pairs"})
            if kept is None or entry[config.choice_key] > kept[config.choice_key]:
                best_state = {k: v.clone() for k, v in model.state_dict().items()}
                kept = entry
        if config.indicators_in_loss:
            entry["session_weights"] = [round(float(w), 3) for w in model.session_weights.detach()]
        entry["seconds"] = time.monotonic() - started  # with validation
        ran = epoch + 1
        if log is not None:
            log.append(entry)
        if progress:
            _print_epoch(phase, entry, config.epochs, fit_started)
        if deadline is not None and time.monotonic() > deadline:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return Fitted(model.eval(), ran, kept)


def _print_epoch(phase: str, entry: dict[str, Any], epochs: int, fit_started: float) -> None:
    """One console line per epoch: its figures and the time it took."""
    figures = ", ".join(
        f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
        for k, v in entry.items()
        if k not in ("epoch", "seconds")
    )
    print(
        f"  {phase} epoch {entry['epoch']}/{epochs}: {figures}; "
        f"{entry['seconds']:.0f} s, {time.monotonic() - fit_started:.0f} s elapsed",
        flush=True,
    )
