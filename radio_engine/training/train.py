"""`radio-engine train`: the listener GRU on real sessions (GRU4Rec-style), then the export.

Recipe (GRU4Rec, Hidasi et al. 2016/2018): session-parallel mini-batches, here over whole
listener histories (the state lives across sessions; a slot resets to h0 only when it moves to
another listener); sampled softmax over in-batch targets plus popularity-sampled negatives with
the log-q correction; truncated back-propagation every `bptt` steps. Epochs are chosen on a
validation split (the last day of each fold); the blend of GRU and session signals is tuned on
the same split; then the model is refit on everything for the chosen epochs and exported.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from radio_engine.model.inputs import FEEDBACK_INDEX, context_features
from radio_engine.settings import Settings
from radio_engine.training.data import Events, data_sha256, load_events, split_last_days
from radio_engine.training.model import ListenerModel, reset_slots


@dataclass
class Vocab:
    """Tracks and artists the model learns: index = position + 1 (0 is the unknown vector)."""

    track_ids: list[str]
    track_artists: list[str]
    artists: list[str]
    popularity: np.ndarray

    @classmethod
    def build(cls, events: Events) -> Vocab:
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
        )

    @property
    def track_index(self) -> dict[str, int]:
        return {t: i + 1 for i, t in enumerate(self.track_ids)}

    @property
    def artist_index(self) -> dict[str, int]:
        return {a: i + 1 for i, a in enumerate(self.artists)}


@dataclass
class Encoded:
    """Events as model inputs, grouped into one time-ordered sequence per listener."""

    ids: np.ndarray  # int64 [n] track index (0 unknown)
    artists: np.ndarray  # int64 [n]
    context: np.ndarray  # float32 [n, C]
    users: list[np.ndarray]  # row indices of each listener's events, in time order
    order: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def encode(events: Events, vocab: Vocab) -> Encoded:
    """Inputs for every event (the shared context_features) and per-listener sequences."""
    order = np.lexsort((events.ts, events.user_id))  # stable: equal timestamps keep file order
    user = events.user_id[order]
    ts = events.ts[order]
    gap = np.full(len(order), np.nan)
    same = np.zeros(len(order), dtype=bool)
    same[1:] = user[1:] == user[:-1]
    gap[1:][same[1:]] = (ts[1:] - ts[:-1])[same[1:]]
    feedback = np.array([FEEDBACK_INDEX.get(e, 0) for e in events.event[order]])
    context = context_features(feedback, np.full(len(order), np.nan), gap, ts)
    tix, aix = vocab.track_index, vocab.artist_index
    ids = np.array([tix.get(t, 0) for t in events.track_id[order]], dtype=np.int64)
    artists = np.array([aix.get(a, 0) for a in events.artist_id[order]], dtype=np.int64)
    starts = np.flatnonzero(~same)
    bounds = [*starts.tolist(), len(order)]
    users = [np.arange(bounds[i], bounds[i + 1]) for i in range(len(starts))]
    return Encoded(ids, artists, context, users, order)


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
) -> float:
    """One pass over every listener's history; returns the mean loss."""
    model.train()
    ids, artists = torch.from_numpy(data.ids), torch.from_numpy(data.artists)
    context = torch.from_numpy(data.context)
    no_audio = torch.zeros(1, model.dims["audio_embedding"])
    pop = vocab.popularity**0.75
    sample_p = torch.from_numpy(np.concatenate([[0.0], pop / pop.sum()]).astype(np.float32))
    in_batch_logq = torch.log(
        torch.from_numpy(np.concatenate([[1.0], vocab.popularity])) / vocab.popularity.sum() * batch
    )
    sampler = torch.Generator().manual_seed(seed)
    h = model.initial_state(batch).detach()
    losses: list[float] = []
    pending: list[torch.Tensor] = []
    total = sum(max(0, len(u) - 1) for u in data.users) // batch
    for step, (rows, targets, reset) in enumerate(
        tqdm(
            session_parallel(data.users, batch, seed),
            total=total,
            desc="train",
            unit="step",
            disable=not (progress and sys.stderr.isatty()),
            leave=False,
        )
    ):
        live = torch.from_numpy(rows >= 0)
        r = torch.from_numpy(np.maximum(rows, 0))
        t = torch.from_numpy(np.maximum(targets, 0))
        h = reset_slots(h, model.h0, torch.from_numpy(reset))
        track_in, _ = model.tracks(
            ids[r], artists[r], no_audio.expand(len(r), -1), torch.zeros(len(r))
        )
        h, q = model.step(torch.cat([track_in, context[r]], dim=-1), h)
        h = torch.where(live.unsqueeze(-1), h, h.detach())
        target_ids = ids[t]
        sampled = torch.multinomial(sample_p, negatives, replacement=True, generator=sampler)
        cand = torch.cat([target_ids, sampled])
        cand_artists = torch.cat([artists[t], torch.from_numpy(_artist_of(vocab, sampled.numpy()))])
        _, out = model.tracks(
            cand, cand_artists, no_audio.expand(len(cand), -1), torch.zeros(len(cand))
        )
        logits = q @ out.T
        logq = torch.cat(
            [in_batch_logq[target_ids], torch.log(sample_p[sampled] * negatives + 1e-12)]
        )
        logits = logits - logq
        hit = cand.unsqueeze(0) == target_ids.unsqueeze(1)
        hit[torch.arange(len(r)), torch.arange(len(r))] = False
        logits = logits.masked_fill(hit, -1e9)
        valid = live & (target_ids > 0)
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
    return float(np.mean(losses)) if losses else float("nan")


_ARTIST_CACHE: dict[int, np.ndarray] = {}


def _artist_of(vocab: Vocab, track_index: np.ndarray) -> np.ndarray:
    key = id(vocab)
    if key not in _ARTIST_CACHE:
        aix = vocab.artist_index
        _ARTIST_CACHE[key] = np.array(
            [0, *(aix.get(a, 0) for a in vocab.track_artists)], dtype=np.int64
        )
    return _ARTIST_CACHE[key][track_index]


@torch.no_grad()
def all_queries(model: ListenerModel, data: Encoded, batch: int = 512) -> np.ndarray:
    """q after every event of every listener (state carried through their whole history)."""
    model.eval()
    ids, artists = torch.from_numpy(data.ids), torch.from_numpy(data.artists)
    context = torch.from_numpy(data.context)
    no_audio = torch.zeros(1, model.dims["audio_embedding"])
    out = np.zeros((len(data.ids), model.dims["query"]), dtype=np.float32)
    users = sorted(data.users, key=len, reverse=True)
    for lo in range(0, len(users), batch):
        group = users[lo : lo + batch]
        h = model.initial_state(len(group))
        for t in range(len(group[0])):
            live = [i for i, u in enumerate(group) if t < len(u)]
            rows = torch.from_numpy(np.array([group[i][t] for i in live]))
            track_in, _ = model.tracks(
                ids[rows], artists[rows], no_audio.expand(len(rows), -1), torch.zeros(len(rows))
            )
            h_live, q = model.step(torch.cat([track_in, context[rows]], dim=-1), h[live])
            h[live] = h_live
            out[rows.numpy()] = q.numpy()
    return out


@torch.no_grad()
def validate(
    model: ListenerModel, train: Events, valid: Events, vocab: Vocab, k: int = 20
) -> dict[str, float]:
    """GRU-only HR@k / MRR@k on next-track pairs inside the validation sessions (warm states)."""
    both = Events.concat([train, valid])
    data = encode(both, vocab)
    q = all_queries(model, data)
    is_valid = np.zeros(len(both), dtype=bool)
    is_valid[len(train) :] = True
    sorted_valid = is_valid[data.order]
    session = np.char.add(both.fold.astype(str), both.session_id)[data.order]
    prev = np.arange(len(data.ids) - 1)
    nxt = prev + 1
    pair = (
        sorted_valid[prev]
        & sorted_valid[nxt]
        & (session[prev] == session[nxt])
        & (both.user_id[data.order][prev] == both.user_id[data.order][nxt])
    )
    prev, nxt = prev[pair], nxt[pair]
    _, track_out = model.tracks(
        torch.arange(1, len(vocab.track_ids) + 1),
        torch.from_numpy(_artist_of(vocab, np.arange(1, len(vocab.track_ids) + 1))),
        torch.zeros(len(vocab.track_ids), model.dims["audio_embedding"]),
        torch.zeros(len(vocab.track_ids)),
    )
    track_out = track_out.numpy()
    targets = data.ids[nxt]
    hits, rr = np.zeros(len(prev)), np.zeros(len(prev))
    for lo in range(0, len(prev), 1024):
        scores = q[prev[lo : lo + 1024]] @ track_out.T
        tgt = targets[lo : lo + 1024]
        warm = tgt > 0
        target_score = np.where(warm, scores[np.arange(len(tgt)), np.maximum(tgt - 1, 0)], np.inf)
        rank = (scores > target_score[:, None]).sum(axis=1)
        hits[lo : lo + 1024] = warm & (rank < k)
        rr[lo : lo + 1024] = np.where(warm & (rank < k), 1.0 / (rank + 1), 0.0)
    return {
        "hr": float(hits.mean()),
        "mrr": float(rr.mean()),
        "pairs": len(prev),
        "warm_pairs": int((targets > 0).sum()),
    }


def fit(
    events: Events,
    vocab: Vocab,
    *,
    epochs: int,
    seed: int,
    id_only: bool,
    progress: bool,
    deadline: float,
    valid: tuple[Events, Events] | None = None,
    log: list[dict[str, Any]] | None = None,
) -> ListenerModel:
    """Train a fresh model for `epochs` (or until the deadline), validating after each epoch."""
    torch.manual_seed(seed)
    model = ListenerModel(len(vocab.track_ids), len(vocab.artists), id_only=id_only)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    data = encode(events, vocab)
    best_state, best_hr = None, -1.0
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
        )
        entry: dict[str, Any] = {
            "epoch": epoch + 1,
            "loss": loss,
            "seconds": time.monotonic() - started,
        }
        if valid is not None:
            metrics = validate(model, *valid, vocab)
            entry.update(valid_hr=metrics["hr"], valid_mrr=metrics["mrr"])
            if metrics["hr"] > best_hr:
                best_hr, best_state = (
                    metrics["hr"],
                    {k: v.clone() for k, v in model.state_dict().items()},
                )
        if log is not None:
            log.append(entry)
        if progress:
            print(
                "  "
                + ", ".join(
                    f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in entry.items()
                ),
                flush=True,
            )
        if time.monotonic() > deadline:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return model.eval()


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Train on --events, choose epochs and blend on a validation split, refit, export to --out."""

    torch.set_num_threads(2)
    started = time.monotonic()
    budget_min = args.max_minutes or 12.0
    deadline = started + budget_min * 60
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
    vocab = Vocab.build(train)
    epochs = args.epochs or 8
    history: list[dict[str, Any]] = []
    print(
        f"train: phase 1, {epochs} epochs at most on the training split, validated each epoch",
        flush=True,
    )
    model = fit(
        train,
        vocab,
        epochs=epochs,
        seed=args.seed,
        id_only=args.id_only,
        progress=True,
        deadline=started + budget_min * 60 * 0.45,
        valid=(train, valid),
        log=history,
    )
    best = max(history, key=lambda e: e.get("valid_hr", -1))
    audio_module, audio_history = _audio(args, deadline)
    spec_extra: dict[str, Any] = {"id_only": bool(args.id_only)}
    blend_info: dict[str, Any] = {}
    tmp_dir = out.with_name(out.name + ".phase1")
    _export(model, tmp_dir, vocab, audio_module)
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
    full_vocab = Vocab.build(events) if not args.valid else vocab
    final = fit(
        events if not args.valid else train,
        full_vocab,
        epochs=final_epochs,
        seed=args.seed,
        id_only=args.id_only,
        progress=True,
        deadline=deadline,
    )
    metrics = {
        "valid_hr@20_gru": best.get("valid_hr"),
        "valid_mrr@20_gru": best.get("valid_mrr"),
        "valid_blend": blend_info.get("valid", {}),
        "epochs": final_epochs,
    }
    _export(
        final,
        out,
        full_vocab,
        audio_module,
        spec_extra=spec_extra,
        data_sha256=data_sha256(args.events),
        metrics=metrics,
        trained=True,
    )
    _save_rules(events if not args.valid else train, out)
    _report(
        out, history, audio_history, metrics, time.monotonic() - started, len(train), len(valid)
    )
    print(
        f"train: model written to {out} in {(time.monotonic() - started) / 60:.1f} min; "
        f"validation HR@20 (GRU alone) {best.get('valid_hr', 0):.4f}",
        flush=True,
    )
    return 0


def _export(model: ListenerModel, out: Path, vocab: Vocab, audio_module: Any, **extra: Any) -> Path:
    """export_model with the vocabulary's tracks, artists and popularity."""
    from radio_engine.training.export import export_model

    return export_model(
        model,
        out,
        track_ids=vocab.track_ids,
        artist_ids=vocab.track_artists,
        artist_vocab=vocab.artists,
        popularity=vocab.popularity,
        audio_module=audio_module,
        **extra,
    )


def _audio(args: argparse.Namespace, deadline: float) -> tuple[Any, list[float]]:
    """Train the audio encoder on the clips when --audio is given (no labels used)."""
    if not args.audio:
        return None, []
    from radio_engine.audio.decode import load_audio_file
    from radio_engine.audio.features import track_features
    from radio_engine.training.audio_model import train_audio_encoder

    paths = sorted(Path(args.audio).rglob("*.ogg"))
    features = [
        track_features(*load_audio_file(p))
        for p in tqdm(paths, desc="audio features", unit="clip", disable=not sys.stderr.isatty())
    ]
    minutes = max(0.5, min(2.0, (deadline - time.monotonic()) / 60 * 0.3))
    module, history = train_audio_encoder(features, max_minutes=minutes)
    return module, history["loss"]


def _save_rules(events: Events, out: Path) -> None:
    """The sequential-rules table over the model's track table (served by the selector)."""
    from radio_engine.model.runtime import ServingModel
    from radio_engine.training.rules import build_rules, save_rules

    model = ServingModel(out)
    save_rules(out, build_rules(events, model.tracks.track_ids))


def _report(
    out: Path,
    history: list[dict[str, Any]],
    audio_loss: list[float],
    metrics: dict[str, Any],
    seconds: float,
    n_train: int,
    n_valid: int,
) -> None:
    """training.png (curves) and report.md / report.json next to the model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3 if audio_loss else 2, figsize=(13, 3.6))
    epochs = [h["epoch"] for h in history]
    axes[0].plot(epochs, [h["loss"] for h in history], marker="o")
    axes[0].set(title="listener GRU: training loss", xlabel="epoch", ylabel="sampled softmax")
    axes[1].plot(epochs, [h.get("valid_hr", np.nan) for h in history], marker="o", label="HR@20")
    axes[1].plot(epochs, [h.get("valid_mrr", np.nan) for h in history], marker="o", label="MRR@20")
    axes[1].set(title="validation (GRU alone)", xlabel="epoch")
    axes[1].legend()
    if audio_loss:
        axes[2].plot(audio_loss)
        axes[2].set(title="audio encoder: InfoNCE", xlabel="step")
    fig.tight_layout()
    fig.savefig(out / "training.png", dpi=110)
    report = {
        "seconds": seconds,
        "train_events": n_train,
        "valid_events": n_valid,
        "history": history,
        "metrics": metrics,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2, default=float))
    lines = [
        "# Training report",
        "",
        f"{n_train} training / {n_valid} validation events; {seconds / 60:.1f} min.",
        "",
        "| epoch | loss | valid HR@20 | valid MRR@20 | seconds |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {h['epoch']} | {h['loss']:.4f} | {h.get('valid_hr', float('nan')):.4f} | "
        f"{h.get('valid_mrr', float('nan')):.4f} | {h['seconds']:.0f} |"
        for h in history
    ]
    lines += [
        "",
        f"Blend tuned on validation: `{json.dumps(metrics.get('valid_blend', {}))}`",
        "",
        "![curves](training.png)",
    ]
    (out / "report.md").write_text("\n".join(lines) + "\n")
