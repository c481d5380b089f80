"""Blend tuning: short-list ranks agree with full rankings, and the search finds the signal."""

from __future__ import annotations

import numpy as np
import pytest

from radio_engine.selector.blend import BlendWeights, blend_scores
from radio_engine.training import metrics
from radio_engine.training.blend_tuning import BlendProblem, tune_blend


def random_signals(rng: np.random.Generator, b: int, n: int) -> tuple:
    """gru, rules, last_artist, session_artist, in_session, popularity."""
    rules = np.where(rng.random((b, n)) < 0.03, rng.random((b, n)) * 3, 0.0).astype(np.float32)
    return (
        rng.standard_normal((b, n)).astype(np.float32),
        rules,
        rng.random((b, n)) < 0.02,
        rng.random((b, n)) < 0.05,
        rng.random((b, n)) < 0.01,
        rng.integers(0, 6, n).astype(np.float32),  # few popularity values: many ties
    )


WEIGHTS = [
    BlendWeights(gru=0.0),
    BlendWeights(gru=0.0, popularity=0.0),
    BlendWeights(gru=0.0, last_artist=-1.0, popularity=0.3),
    BlendWeights(gru=0.5),
    BlendWeights(gru=2.0, session_artist=1.0, popularity=0.1),
]


@pytest.mark.parametrize("weights", WEIGHTS)
def test_short_lists_give_the_full_ranking_metrics(weights):
    rng = np.random.default_rng(11)
    b, n, k = 60, 3000, 5
    sig = random_signals(rng, b, n)
    targets = rng.integers(0, n, b)
    scores = blend_scores(*sig, weights)
    targets[:20] = np.argsort(-scores[:20], axis=1)[:, 2]  # some targets inside the top k
    full = metrics.ranks(scores, targets)
    short = BlendProblem.from_dense(*sig, targets, k=k).ranks(weights)
    if weights.gru == 0:  # without the GRU the counts are exact, ties included
        assert short.best.tolist() == full.best.tolist()
        assert short.worst.tolist() == full.worst.tolist()
    assert metrics.hit_rate(short, k) == pytest.approx(metrics.hit_rate(full, k))
    assert metrics.mrr(short, k) == pytest.approx(metrics.mrr(full, k))
    assert metrics.hit_rate(full, k) > 0.1  # the test does cover hits


def test_a_blend_without_gru_builds_lists_without_kept_entries():
    rng = np.random.default_rng(12)
    sig = random_signals(rng, 10, 500)
    targets = rng.integers(0, 500, 10)
    problem = BlendProblem.from_dense(None, *sig[1:], targets, k=20)
    assert not problem.kept.any()
    w = BlendWeights(gru=0.0)
    full = metrics.ranks(blend_scores(None, *sig[1:], w), targets)
    assert problem.ranks(w).worst.tolist() == full.worst.tolist()


def test_pairs_without_a_candidate_target_are_dropped_and_batches_join():
    rng = np.random.default_rng(7)
    sig = random_signals(rng, 4, 50)
    a = BlendProblem.from_dense(*sig, np.array([1, -1, 3, 4]), k=3)
    b = BlendProblem.from_dense(*sig, np.array([0, 0, 0, 0]), k=3)
    assert a.size == 3
    both = BlendProblem.concat([a, b])
    assert both.size == 7
    w = BlendWeights()
    assert both.ranks(w).worst.tolist() == a.ranks(w).worst.tolist() + b.ranks(w).worst.tolist()
    assert BlendProblem.concat([]).size == 0


def test_tuning_finds_the_signal_that_predicts_the_target():
    # every target is the last artist's track, while the rules point elsewhere
    rng = np.random.default_rng(8)
    b, n = 200, 100
    rules = np.zeros((b, n), np.float32)
    same = np.zeros((b, n), bool)
    targets = rng.integers(0, n, b)
    same[np.arange(b), targets] = True
    rules[np.arange(b), (targets + 1) % n] = 5.0
    none = np.zeros((b, n), bool)
    pop = rng.integers(0, 3, n).astype(np.float32)
    problem = BlendProblem.from_dense(None, rules, same, none, none, pop, targets, k=1)
    start = BlendWeights(gru=0.0, last_artist=0.0)
    assert tune_blend(problem, k=1, start=start, tune=())[1]["hr"] == 0.0
    best, info = tune_blend(problem, k=1, start=start, tune=("last_artist", "popularity"))
    assert info == {"hr": 1.0, "mrr": 1.0, "pairs": b}
    assert best.last_artist > np.log1p(5.0)
    assert best.gru == 0.0


def test_tuning_weighs_mrr_as_much_as_hr():
    # k = 2. Nine pairs in ten: a decoy with strong rules, the target by the last artist (and
    # weak rules): a high last_artist weight moves the target from rank 2 to rank 1. The tenth
    # pair: the target has some rules and the last artist's track is a decoy, so a high
    # last_artist weight pushes the target out of the top 2. HR alone would keep the weight low
    # (HR 1.0, MRR 0.5); HR + MRR takes the high one (HR 0.9, MRR 0.9).
    b, n = 100, 10
    rules = np.zeros((b, n), np.float32)
    same = np.zeros((b, n), bool)
    targets = np.zeros(b, np.int64)
    for i in range(b):
        if i % 10:
            rules[i, 1], rules[i, 0], same[i, 0] = 5.0, 0.5, True
        else:
            rules[i, 1], rules[i, 0], same[i, 2] = 5.0, 1.0, True
    none = np.zeros((b, n), bool)
    problem = BlendProblem.from_dense(None, rules, same, none, none, np.zeros(n), targets, k=2)
    start = BlendWeights(gru=0.0, last_artist=0.0, popularity=0.0)
    assert tune_blend(problem, k=2, start=start, tune=())[1] == {"hr": 1.0, "mrr": 0.5, "pairs": b}
    best, info = tune_blend(problem, k=2, start=start, tune=("last_artist",))
    assert info == {"hr": pytest.approx(0.9), "mrr": pytest.approx(0.9), "pairs": b}
    assert best.last_artist >= 1.5
