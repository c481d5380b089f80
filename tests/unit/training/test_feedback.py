"""Training knows feedback: skips and dislikes are inputs but never targets, 30Music (every event
a play) trains exactly as before, and the with/without-feedback comparison on SIMULATED
listeners computes its figures and names its data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from radio_engine.model.inputs import FEEDBACK_INDEX
from radio_engine.settings import Settings
from radio_engine.training.config import TrainConfig
from radio_engine.training.data import Events, load_events, split_last_days
from radio_engine.training.encoding import Vocab, encode
from radio_engine.training.feedback_ablation import (
    VARIANTS,
    ablation_report,
    format_ablation,
    split_last_sessions,
)
from radio_engine.training.loop import train_epoch
from radio_engine.training.model import ListenerModel
from radio_engine.training.report import training_data
from radio_engine.training.simulated_listeners import (
    LABEL_FILE,
    ClipTable,
    simulate_listeners,
    would_skip,
)
from radio_engine.training.validation import ValidationPairs

EVENTS_CSV = Settings().data_path / "30music" / "events.csv"


def _events(kinds: list[list[str]]) -> Events:
    """One listener per list of event kinds, one session each, a track per event (two artists)."""
    rows = [(u, i, kind) for u, listener in enumerate(kinds) for i, kind in enumerate(listener)]
    return Events(
        fold=np.zeros(len(rows), np.int64),
        user_id=np.array([f"u{u}" for u, _, _ in rows]),
        session_id=np.array([f"u{u}-s" for u, _, _ in rows]),
        track_id=np.array([f"t{(u + i) % 7}" for u, i, _ in rows]),
        artist_id=np.array([f"a{(u + i) % 2}" for u, i, _ in rows]),
        ts=np.array([1000.0 + 60 * i for _, i, _ in rows]),
        event=np.array([kind for _, _, kind in rows]),
    )


def _one_epoch(
    events: Events, vocab: Vocab, feedback: bool
) -> tuple[float, dict[str, torch.Tensor]]:
    """Loss of one seeded epoch from a seeded fresh model, and the weights after it."""
    torch.manual_seed(0)
    model = ListenerModel(len(vocab.track_ids), len(vocab.artists), tied=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    config = TrainConfig(batch=4, negatives=8, bptt=2, id_dropout=0.3)
    loss = train_epoch(
        model, encode(events, vocab, feedback), vocab, opt, config, seed=0, progress=False
    )
    return loss, {k: v.clone() for k, v in model.state_dict().items()}


def test_encode_reads_feedback_and_marks_skips_and_dislikes_as_no_target() -> None:
    kinds = ["play", "skip", "like", "dislike", "complete"]
    events = _events([kinds])
    vocab = Vocab.build(events)
    data = encode(events, vocab)
    assert data.accepted.tolist() == [True, False, True, False, True]
    assert data.context[:, : len(FEEDBACK_INDEX)].argmax(1).tolist() == [
        FEEDBACK_INDEX[k] for k in kinds
    ]
    plain = encode(events, vocab, feedback=False)
    assert plain.accepted.all()
    assert (plain.context[:, : len(FEEDBACK_INDEX)].argmax(1) == FEEDBACK_INDEX["play"]).all()
    np.testing.assert_array_equal(plain.context[:, 5:], data.context[:, 5:])


def test_an_unknown_event_kind_is_an_error_never_silently_a_play() -> None:
    events = _events([["play", "skipped", "like"]])
    with pytest.raises(ValueError, match=r"unknown event kinds \['skipped'\]"):
        encode(events, Vocab.build(events))


def test_skipped_and_disliked_targets_never_reach_the_loss() -> None:
    """Every next event skipped or disliked: with feedback no step has a target, so no loss
    and no update; without feedback the same events train."""
    events = _events([["play", "skip", "skip", "dislike", "skip"]] * 3)
    vocab = Vocab.build(events)
    torch.manual_seed(0)
    before = ListenerModel(len(vocab.track_ids), len(vocab.artists), tied=True).state_dict()
    loss, after = _one_epoch(events, vocab, feedback=True)
    assert np.isnan(loss)
    assert all(torch.equal(before[k], after[k]) for k in before)
    loss, after = _one_epoch(events, vocab, feedback=False)
    assert np.isfinite(loss)
    assert not all(torch.equal(before[k], after[k]) for k in before)


def test_on_30music_feedback_changes_neither_pairs_nor_loss(tmp_path: Path) -> None:
    """Every 30Music event is a play: the same inputs, targets, validation pairs, loss and
    weights with and without the feedback path."""
    path = tmp_path / "events.csv"
    path.write_text("\n".join(EVENTS_CSV.read_text().splitlines()[:1501]) + "\n")
    events = load_events(path)
    assert set(events.event.tolist()) == {"play"}
    train, valid = split_last_days(events, 1.0)
    vocab = Vocab.build(train)
    with_fb, without = encode(train, vocab), encode(train, vocab, feedback=False)
    np.testing.assert_array_equal(with_fb.context, without.context)
    assert with_fb.accepted.all() and without.accepted.all()
    pairs = ValidationPairs.build(train, valid, vocab)
    sessions = np.unique(np.char.add(valid.fold.astype(str), valid.session_id))
    assert len(pairs.targets) == len(valid) - sessions.size  # every next event in a session
    np.testing.assert_array_equal(
        pairs.targets, ValidationPairs.build(train, valid, vocab, False).targets
    )
    loss_a, weights_a = _one_epoch(train, vocab, feedback=True)
    loss_b, weights_b = _one_epoch(train, vocab, feedback=False)
    assert np.isfinite(loss_a) and loss_a == loss_b
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)


def test_the_training_report_says_with_or_without_feedback_and_which_data(
    tmp_path: Path,
) -> None:
    events = _events([["play", "skip", "like"], ["dislike", "complete"]])
    (tmp_path / LABEL_FILE).write_text("simulated")
    described = training_data(tmp_path / "events.csv", events, feedback=True)
    assert described["simulated"] and described["with_feedback"]
    assert described["sentence"].startswith("Trained with feedback: yes (2 skip/dislike")
    assert "SIMULATED listeners" in described["sentence"]
    described = training_data(tmp_path / "events.csv", events, feedback=False)
    assert described["sentence"].startswith("Trained with feedback: no (--no-feedback")
    plays = _events([["play", "play"]])
    described = training_data(EVENTS_CSV, plays, feedback=True)
    assert not described["simulated"] and "every event is a play" in described["sentence"]
    assert "SIMULATED" not in described["sentence"]


@pytest.fixture(scope="module")
def clips() -> ClipTable:
    """A small stand-in clip table (6 games of 8 clips; no audio frames, which the simulation
    does not read), so the comparison runs at CI size."""
    rng = np.random.default_rng(0)
    games = np.repeat([f"game{g}" for g in range(6)], 8)
    return ClipTable(
        clip_id=np.array([f"c{i:02d}" for i in range(games.size)]),
        game=games,
        artist_id=np.array([f"composer{i % 9}" for i in range(games.size)]),
        features=[],
        mfcc_stats=rng.normal(size=(games.size, 40)).astype(np.float32),
    )


def test_the_time_split_holds_out_each_listeners_last_sessions(clips: ClipTable) -> None:
    sim = simulate_listeners(clips, listeners=20, seed=2)
    train, test = split_last_sessions(sim.events)
    assert len(train) + len(test) == len(sim.events)
    for user in np.unique(sim.events.user_id):
        before, after = train.ts[train.user_id == user], test.ts[test.user_id == user]
        assert before.size and after.size and before.max() < after.min()
        assert not set(train.session_id[train.user_id == user]) & set(test.session_id)


def test_the_feedback_comparison_computes_its_figures_and_names_its_data(
    clips: ClipTable,
) -> None:
    sim = simulate_listeners(clips, listeners=40, seed=1)
    train, test = split_last_sessions(sim.events)
    torch.set_num_threads(1)
    report = ablation_report(train, test, clips, sim.holdout, sim.tastes, epochs=1, seed=0, k=5)
    assert "SIMULATED" in report["data"] and report["label"] == "SIMULATED"
    accepted_test = np.isin(test.event, ["play", "complete", "like"])
    assert 0 < report["pairs"] <= accepted_test.sum()
    for name in VARIANTS:
        assert set(report[name]) == {"hr", "mrr", "rejected"}
        assert 0.0 < report[name]["hr"] <= 1.0
        assert 0.0 < report[name]["mrr"] <= report[name]["hr"]
        assert 0.0 <= report[name]["rejected"] <= 1.0
    for measure, d in report["difference"].items():
        assert d["low"] <= d["diff"] <= d["high"]
        with_, without = report["with feedback"][measure], report["without feedback"][measure]
        assert d["diff"] == pytest.approx(with_ - without)
    # the simulator's rule: a listener skips about 40 % of the playable clips
    playable = ~np.isin(clips.clip_id, sim.holdout)
    share = np.mean(
        [would_skip(clips, sim.tastes[u], playable)[playable].mean() for u in sim.tastes]
    )
    assert 0.3 < share < 0.5
    table = format_ablation(report)
    assert "SIMULATED listeners" in table.splitlines()[0]
    assert "trained with feedback" in table and "trained without feedback" in table
