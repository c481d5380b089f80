"""Ranking metrics on hand-made cases whose answers are worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from radio_engine.training import metrics


def test_ranks_give_the_span_of_tied_candidates():
    scores = np.array([[0.1, 0.5, 0.3], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    r = metrics.ranks(scores, np.array([2, 1, 0]))
    # row 0: only 0.5 beats 0.3; row 1: tied with column 0; row 2: everything tied
    assert r.best.tolist() == [2, 1, 1]
    assert r.worst.tolist() == [2, 2, 3]


def test_a_target_outside_the_candidates_is_a_miss():
    r = metrics.ranks(np.ones((2, 3), np.float32), np.array([-1, 0]))
    assert r.best[0] == metrics.MISS
    # the second target ties with all three: in the top 3 for sure, top 1 one time in three
    assert metrics.hit_rate(r, 3) == pytest.approx(0.5)
    assert metrics.hit_rate(r, 1) == pytest.approx(1 / 6)


def test_hit_rate_and_mrr_without_ties():
    best = np.array([1, 2, 5, metrics.MISS])
    r = metrics.Ranks(best, best)
    assert metrics.hit_rate(r, 3) == pytest.approx(0.5)
    assert metrics.mrr(r, 3) == pytest.approx((1 + 0.5) / 4)
    assert metrics.hit_rate(r, 5) == pytest.approx(0.75)
    assert metrics.mrr(r, 5) == pytest.approx((1 + 0.5 + 0.2) / 4)
    empty = metrics.Ranks(np.zeros(0, np.int64), np.zeros(0, np.int64))
    assert metrics.hit_rate(empty, 20) == 0.0
    assert metrics.mrr(empty, 20) == 0.0


def test_ties_count_as_a_random_order_in_expectation():
    # best 2, worst 5: ranks 2, 3, 4, 5 with chance 1/4 each
    r = metrics.Ranks(np.array([2]), np.array([5]))
    assert metrics.hit_rate(r, 3) == pytest.approx(2 / 4)
    assert metrics.mrr(r, 3) == pytest.approx((1 / 2 + 1 / 3) / 4)
    assert metrics.mrr(r, 10) == pytest.approx((1 / 2 + 1 / 3 + 1 / 4 + 1 / 5) / 4)
    # a scorer that gives everything the same score gets the chance rate
    flat = metrics.ranks(np.zeros((4, 50), np.float32), np.array([0, 7, 20, 49]))
    assert metrics.hit_rate(flat, 5) == pytest.approx(5 / 50)
    # ... and equals the mean over every way of breaking the tie
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 3, (1, 12)).astype(np.float32)
    orders = [rng.permutation(12) for _ in range(4000)]
    tie_broken = [metrics.ranks(scores + 1e-3 * o / 12, np.array([3])).best[0] for o in orders]
    r = metrics.ranks(scores, np.array([3]))
    assert metrics.hit_rate(r, 4) == pytest.approx(np.mean(np.array(tie_broken) <= 4), abs=0.03)


def test_top_k_orders_by_score_then_lower_column():
    scores = np.array([[0.2, 0.9, 0.2, 0.5, 0.2], [0.0, 0.0, 0.0, 0.0, 1.0]], dtype=np.float32)
    assert metrics.top_k(scores, 3).tolist() == [[1, 3, 0], [4, 0, 1]]
    assert metrics.top_k(scores, 9).shape == (2, 5)


def test_top_k_matches_a_stable_full_sort_on_tie_heavy_rows():
    rng = np.random.default_rng(3)
    for scores in (
        rng.standard_normal((7, 3000)).astype(np.float32),
        rng.integers(0, 3, (7, 3000)).astype(np.float32),
        np.where(rng.random((7, 3000)) < 0.002, 1.0, 0.0).astype(np.float32),
    ):
        expected = np.argsort(-scores, axis=1, kind="stable")[:, :20]
        assert (metrics.top_k(scores, 20) == expected).all()


def test_top_k_follows_a_given_tie_order():
    scores = np.array([[0.0, 1.0, 0.0, 0.0, 0.0]], dtype=np.float32)
    assert metrics.top_k(scores, 3, tie_order=np.array([4, 3, 2, 1, 0])).tolist() == [[1, 4, 3]]
    # rows where almost everything ties (a sparse scorer over a large catalog)
    rng = np.random.default_rng(2)
    order = rng.permutation(20_000)
    sparse = np.zeros((3, 20_000), np.float32)
    sparse[0, [5, 17]] = [2.0, 1.0]
    sparse[2] = rng.standard_normal(20_000)
    expected = order[np.argsort(-sparse[:, order], axis=1, kind="stable")[:, :20]]
    got = metrics.top_k(sparse, 20, tie_order=order)
    assert (got == expected).all()
    assert got[0, :2].tolist() == [5, 17]


def test_top_k_agrees_with_ranks():
    rng = np.random.default_rng(4)
    scores = rng.integers(0, 4, (50, 40)).astype(np.float32)
    targets = rng.integers(0, 40, 50)
    in_list = (metrics.top_k(scores, 10, rng.permutation(40)) == targets[:, None]).any(axis=1)
    r = metrics.ranks(scores, targets)
    assert (in_list[r.worst <= 10]).all()
    assert not (in_list[r.best > 10]).any()


def test_catalog_coverage():
    assert metrics.catalog_coverage(np.array([[0, 1], [1, 2]]), 10) == pytest.approx(0.3)
    assert metrics.catalog_coverage(np.zeros((0, 2), np.int64), 10) == 0.0


def test_artist_diversity():
    artists = np.array([0, 0, 1, 2, -1, -1])
    # [0, 1] is one artist (1/2); [2, 3] two (2/2); [4, 5] unknown artists count apart (2/2)
    lists = np.array([[0, 1], [2, 3], [4, 5]])
    assert metrics.artist_diversity(lists, artists) == pytest.approx((0.5 + 1 + 1) / 3)
