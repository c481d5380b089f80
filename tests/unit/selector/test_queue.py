"""Queue helpers: ranking, committing (versions), pool usability, exploration seeds."""

from __future__ import annotations

import numpy as np

from radio_engine.listeners.state import ListenerState
from radio_engine.selector.queue import build_queue, commit_queue, exploration_seed, rank, usable
from radio_engine.selector.rules import RuleContext, table


def test_rank_is_best_first_stable_on_ties_and_keeps_padding_last() -> None:
    rows = np.array([[10, 11, 12, 13, -1], [5, -1, 6, -1, -1]])
    scores = np.array([[0.5, 2.0, 0.5, 1.0, 9.0], [1.0, 9.0, 3.0, 9.0, 9.0]])
    ranked, _ = rank(rows, scores)
    assert ranked.tolist() == [[11, 13, 10, 12, -1], [6, 5, -1, -1, -1]]


def test_rank_equals_a_stable_sort_on_random_scores_with_ties_and_signed_zeros() -> None:
    rng = np.random.default_rng(4)
    rows = rng.integers(-1, 5000, size=(40, 120))
    scores = rng.choice([-1.5, -0.0, 0.0, 0.25, 3.0, np.inf, -np.inf], size=(40, 120))
    scores[:, ::5] = rng.normal(size=(40, 24))
    key = np.where(rows >= 0, -scores, np.inf)
    key[key == 0] = 0.0
    expected = np.argsort(key, axis=1, kind="stable")
    ranked, order = rank(rows, scores.astype(np.float32))
    assert np.array_equal(order, expected)
    assert np.array_equal(ranked, np.take_along_axis(rows, expected, axis=1))


def test_commit_bumps_the_version_only_when_the_queue_changes() -> None:
    state = ListenerState(h=np.zeros(2, np.float32))
    assert commit_queue(state, ["a", "b"]) and state.version == 1
    assert not commit_queue(state, ["a", "b"]) and state.version == 1
    assert commit_queue(state, ["b", "a"]) and state.version == 2  # order is part of a queue
    assert commit_queue(state, []) and state.version == 3 and state.queue == []


def test_usable_counts_what_the_exclusions_leave_per_listener() -> None:
    ctx = RuleContext(
        recent=table([[1, 2], []]), disliked=table([[3], [1]]), skipped=table([[4], []])
    )
    pools = table([[1, 2, 3, 4, 5, 6], [1, 2]])
    assert usable(pools, ctx).tolist() == [2, 1]


def test_build_queue_runs_the_rules() -> None:
    ctx = RuleContext(recent=table([[0]]), artist_of=np.arange(10, dtype=np.int32), queue_length=3)
    assert build_queue(np.array([[0, 5, 6, 7, 8]]), ctx).queues == ((5, 6, 7),)


def test_exploration_seeds_differ_by_listener_and_step_and_are_stable() -> None:
    a = exploration_seed(7, "listener-1", 3)
    assert a == exploration_seed(7, "listener-1", 3)
    seeds = {
        a,
        exploration_seed(7, "listener-2", 3),
        exploration_seed(7, "listener-1", 4),
        exploration_seed(8, "listener-1", 3),
    }
    assert len(seeds) == 4
