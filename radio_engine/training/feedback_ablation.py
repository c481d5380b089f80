"""Does knowing feedback help? Two GRUs on the same SIMULATED listening, with and without it.

30Music has no feedback we may use (every event is a play), so what the model learns from skips
and likes is trained and measured on the simulated listeners only (simulated_listeners). Each
listener's last sessions are held out (a time split); on the rest one GRU trains with feedback
(skip/dislike events are inputs, never targets) and one without (every event a play and a
target), with the same vocabulary, seed and epochs and no audio encoder (the question is
feedback, not new clips). Both are scored on the same pairs: the next ACCEPTED track
(play/complete/like) inside the held-out sessions, ranked among the clips of the training part.

Reported per model: HR@k and MRR@k of the score it trains with (GRU + learned session
indicators), and the share of its top k that the listener would skip or dislike (the simulator's
own rule, would_skip); with-minus-without differences with 95 % intervals from the paired
bootstrap, whole listeners resampled.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from radio_engine.training import metrics
from radio_engine.training.bootstrap import SessionBootstrap
from radio_engine.training.config import TrainConfig
from radio_engine.training.data import Events, load_events
from radio_engine.training.encoding import Vocab, accepted_events
from radio_engine.training.loop import fit
from radio_engine.training.simulated_listeners import (
    LABEL,
    ClipTable,
    load_clip_table,
    read_holdout,
    would_skip,
)
from radio_engine.training.validation import ValidationPairs, pair_scores

#: share of each listener's sessions (the last ones, at least one) held out for the evaluation
TEST_SHARE = 0.25
#: the two models compared, by whether they train with feedback
VARIANTS = {"with feedback": True, "without feedback": False}
#: the metrics compared, as (report key, table heading)
MEASURES = (("hr", "HR@{k}"), ("mrr", "MRR@{k}"), ("rejected", "top-{k} share skipped"))


def split_last_sessions(events: Events, share: float = TEST_SHARE) -> tuple[Events, Events]:
    """(train, test): each listener's last round(share * sessions) sessions, at least one, are
    the test part; a listener with a single session stays wholly in train."""
    key = np.char.add(np.char.add(events.user_id.astype(str), "\x1f"), events.session_id)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    start = np.full(first.size, np.inf)
    np.minimum.at(start, inverse.ravel(), events.ts)
    owner = events.user_id[first]
    test_session = np.zeros(first.size, bool)
    for user in np.unique(owner):
        mine = np.flatnonzero(owner == user)
        if mine.size > 1:
            held = max(1, round(share * mine.size))
            test_session[mine[np.argsort(start[mine], kind="stable")[-held:]]] = True
    test = test_session[inverse.ravel()]
    return events.take(~test), events.take(test)


def ablation_report(
    train: Events,
    test: Events,
    clips: ClipTable,
    holdout: np.ndarray,
    tastes: dict[str, list[str]],
    *,
    epochs: int,
    seed: int,
    k: int = 20,
    progress: bool = False,
) -> dict[str, Any]:
    """Train both variants on `train`, score them on the accepted next tracks of `test`."""
    vocab = Vocab.build(train)
    clip_row = {c: i for i, c in enumerate(clips.clip_id.tolist())}
    vocab_clips = np.array([clip_row[t] for t in vocab.track_ids], np.int64)
    playable = ~np.isin(clips.clip_id, holdout)
    users = sorted(tastes)
    rejects = np.stack([would_skip(clips, tastes[u], playable)[vocab_clips] for u in users])
    per_pair: dict[str, dict[str, np.ndarray]] = {}
    pair_users = np.zeros(0, str)
    for name, feedback in VARIANTS.items():
        config = TrainConfig(epochs=epochs, seed=seed, feedback=feedback)
        model = fit(train, vocab, config, progress=progress, phase=name).model
        pairs = ValidationPairs.build(train, test, vocab, feedback)
        pair_users = test.user_id[pairs.target_event]
        user_row = np.searchsorted(users, pair_users)
        values: dict[str, list[np.ndarray]] = {m: [] for m, _ in MEASURES}
        for sel, gru, signals in pair_scores(model, pairs, vocab):
            scores = np.asarray(gru + signals, np.float32)
            r = metrics.ranks(scores, pairs.targets[sel])
            values["hr"].append(metrics.hits(r, k))
            values["mrr"].append(metrics.reciprocal_ranks(r, k))
            top = metrics.top_k(scores, k)
            values["rejected"].append(np.take_along_axis(rejects[user_row[sel]], top, 1).mean(1))
        per_pair[name] = {m: np.concatenate(v) for m, v in values.items()}
    with_, without = (per_pair[name] for name in VARIANTS)
    bootstrap = SessionBootstrap(pair_users, seed=seed)
    differences = bootstrap.differences([(with_[m], without[m]) for m, _ in MEASURES])
    return {
        "label": LABEL,
        "data": f"{LABEL} listeners over the game-music clips (no real listening)",
        "k": k,
        "epochs": epochs,
        "seed": seed,
        "listeners": len(np.unique(train.user_id)),
        "train_events": len(train),
        "test_events": len(test),
        "test_events_skipped_or_disliked": int((~accepted_events(test)).sum()),
        "pairs": int(pair_users.size),
        "candidates": len(vocab.track_ids),
        "random_top_k_rejected": float(rejects.mean()),
        **{name: {m: float(v.mean()) for m, v in per_pair[name].items()} for name in VARIANTS},
        "difference": {m: d.to_dict() for (m, _), d in zip(MEASURES, differences, strict=True)},
    }


def format_ablation(report: dict[str, Any]) -> str:
    """The report as a plain-text table, naming the data and the split."""
    k = report["k"]
    headings = [h.format(k=k) for _, h in MEASURES]
    lines = [
        f"Data: {report['data']}. Trained and evaluated on {LABEL} listeners only.",
        f"{report['listeners']} listeners; train {report['train_events']} events (each "
        f"listener's earlier sessions), test {report['test_events']} events (the last "
        f"{TEST_SHARE:.0%} of each listener's sessions, {report['test_events_skipped_or_disliked']}"
        f" skipped or disliked); {report['pairs']} pairs: next accepted clip among "
        f"{report['candidates']}; {report['epochs']} epoch(s), seed {report['seed']}.",
        "",
        f"{'GRU + session indicators':<28}" + "".join(f"{h:>28}" for h in headings),
    ]
    for name in VARIANTS:
        lines.append(
            f"{'trained ' + name:<28}" + "".join(f"{report[name][m]:>28.4f}" for m, _ in MEASURES)
        )
    diff = report["difference"]
    lines.append(
        f"{'with minus without':<28}"
        + "".join(
            f"{diff[m]['diff']:+.4f} [{diff[m]['low']:+.4f}, {diff[m]['high']:+.4f}]".rjust(28)
            for m, _ in MEASURES
        )
    )
    lines += [
        "",
        f"top-{k} share skipped: share of the recommended clips that the listener would skip or "
        f"dislike (the simulator's rule); a random clip: {report['random_top_k_rejected']:.4f}. "
        "Intervals: 95 %, paired bootstrap over listeners.",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """`radio-engine evaluate-simulated --feedback-ablation`: train both, print the table."""
    sim_dir = Path(args.simulation)
    events = load_events(sim_dir / "events.csv")
    holdout = read_holdout(sim_dir)
    tastes = json.loads((sim_dir / "tastes.json").read_text())
    clips = load_clip_table(Path(args.audio), Path(args.metadata))
    train, test = split_last_sessions(events)
    report = ablation_report(
        train,
        test,
        clips,
        holdout,
        tastes,
        epochs=args.epochs,
        seed=args.seed,
        k=args.k or 20,
        progress=not args.json,
    )
    print(json.dumps(report, indent=2) if args.json else format_ablation(report))
    return 0
