"""Blocked two-stage top-k is exact: the same rows as a full sort, for every block layout."""

from __future__ import annotations

import math

import numpy as np
import pytest

from radio_engine.selector import scoring
from radio_engine.selector.scoring import top_k_naive, top_k_rows


@pytest.mark.parametrize("block", [97, 999, 4096, 65536])
@pytest.mark.parametrize("prune", [True, False])
def test_blocked_top_k_equals_brute_force(block: int, prune: bool) -> None:
    rng = np.random.default_rng(block)
    matrix = rng.normal(size=(20_000, 16)).astype(np.float32)
    queries = rng.normal(size=(9, 16)).astype(np.float32)
    got = top_k_rows(queries, matrix, 50, block=block, prune=prune)
    assert got.shape == (9, 50)
    assert np.array_equal(got, top_k_naive(queries, matrix, 50))


def test_inactive_rows_are_never_returned() -> None:
    rng = np.random.default_rng(5)
    matrix = rng.normal(size=(5_000, 8)).astype(np.float32)
    queries = rng.normal(size=(4, 8)).astype(np.float32)
    active = rng.random(5_000) > 0.5
    scores = queries @ matrix.T
    scores[:, ~active] = -np.inf
    expect = np.argsort(-scores, axis=1, kind="stable")[:, :30]
    assert np.array_equal(top_k_rows(queries, matrix, 30, active, block=333), expect)


def test_fewer_active_rows_than_k_gives_them_all_best_first() -> None:
    matrix = np.eye(4, dtype=np.float32)
    active = np.array([True, False, True, True])
    rows = top_k_rows(np.array([[0.0, 5.0, 1.0, 0.5]], np.float32), matrix, 10, active)
    assert rows.tolist() == [[2, 3, 0]]


def test_equal_scores_come_in_row_order() -> None:
    matrix = np.ones((10, 2), dtype=np.float32)
    matrix[7] = 2.0
    [rows] = top_k_rows(np.ones((1, 2), np.float32), matrix, 4, block=3).tolist()
    assert rows[0] == 7 and rows[1:] == sorted(rows[1:]) and len(set(rows)) == 4


def test_empty_inputs() -> None:
    matrix = np.zeros((0, 4), np.float32)
    assert top_k_rows(np.ones((2, 4), np.float32), matrix, 5).shape == (2, 0)
    assert top_k_rows(np.zeros((0, 4), np.float32), np.ones((3, 4), np.float32), 5).shape == (0, 0)


def _naive_active(
    queries: np.ndarray, matrix: np.ndarray, k: int, active: np.ndarray
) -> np.ndarray:
    """The reference with inactive rows scored -inf (they rank last, so never in the top k)."""
    scores = queries @ matrix.T
    scores[:, ~active] = -np.inf
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("prune", [True, False])
def test_k_larger_than_a_block(prune: bool) -> None:
    rng = np.random.default_rng(11)
    matrix = rng.normal(size=(3_000, 8)).astype(np.float32)
    queries = rng.normal(size=(5, 8)).astype(np.float32)
    got = top_k_rows(queries, matrix, 300, block=64, prune=prune)
    assert np.array_equal(got, top_k_naive(queries, matrix, 300))


def test_a_block_with_no_active_row_and_a_single_query() -> None:
    rng = np.random.default_rng(12)
    matrix = rng.normal(size=(4_000, 8)).astype(np.float32)
    queries = rng.normal(size=(1, 8)).astype(np.float32)
    active = rng.random(4_000) > 0.3
    active[:256] = False  # the whole first block
    active[1_024:1_536] = False
    got = top_k_rows(queries, matrix, 100, active, block=256)
    assert active[got].all()
    assert np.array_equal(got, _naive_active(queries, matrix, 100, active))


def test_ties_are_broken_by_row_like_a_stable_sort() -> None:
    rng = np.random.default_rng(13)
    matrix = rng.integers(-2, 3, size=(5_000, 4)).astype(np.float32)  # a few distinct scores
    queries = rng.integers(-2, 3, size=(6, 4)).astype(np.float32)
    for block in (8, 100, 4_096):
        got = top_k_rows(queries, matrix, 250, block=block)
        expect = top_k_naive(queries, matrix, 250)
        scores = queries @ matrix.T
        assert np.array_equal(
            np.take_along_axis(scores, got, axis=1), np.take_along_axis(scores, expect, axis=1)
        )
        assert np.array_equal(got, expect)


def test_keys_rank_by_score_then_row_and_equal_signed_zeros() -> None:
    scores = np.array([-np.inf, -2.5, -0.0, 0.0, 1e-30, 3.0, 3.0], np.float32)
    rows = np.array([9, 8, 0, 1, 7, 6, 5])
    keys = scoring._keys(scores, rows)
    # best first: 3.0 (row 5 before row 6), 1e-30, then the zeros in row order, ...
    assert np.argsort(-keys).tolist() == [6, 5, 4, 2, 3, 1, 0]
    assert np.array_equal(scoring._key_scores(keys), scores + np.float32(0.0))  # -0.0 kept as 0.0


def test_large_catalogs_start_from_a_guessed_bar_and_stay_exact() -> None:
    rng = np.random.default_rng(14)
    matrix = rng.normal(size=(40_000, 8)).astype(np.float32)
    queries = rng.normal(size=(16, 8)).astype(np.float32)
    assert np.array_equal(top_k_rows(queries, matrix, 200), top_k_naive(queries, matrix, 200))
    active = rng.random(40_000) > 0.4
    got = top_k_rows(queries, matrix, 200, active)
    assert np.array_equal(got, _naive_active(queries, matrix, 200, active))


def test_a_guess_that_is_too_high_is_scored_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # the sampled rows (every 64th) hold the catalog's best scores: the guess overshoots
    rng = np.random.default_rng(15)
    n = 40_000
    base = rng.normal(size=(n, 4)).astype(np.float32)
    queries = np.ones((3, 4), np.float32)
    order = np.argsort(-(base @ queries[0]))
    sampled = np.arange(0, n, 64)
    others = np.setdiff1d(np.arange(n), sampled)
    matrix = np.empty_like(base)
    matrix[sampled] = base[order[: sampled.size]]
    matrix[others] = base[order[sampled.size :]]
    scans = []
    real = scoring._scan

    def counting(*args: object, **kwargs: object) -> tuple[np.ndarray, np.ndarray]:
        scans.append(kwargs["guess"])
        return real(*args, **kwargs)

    monkeypatch.setattr(scoring, "_scan", counting)
    assert np.array_equal(top_k_rows(queries, matrix, 200), top_k_naive(queries, matrix, 200))
    assert scans == [True, False]


def test_guess_size_keeps_the_chance_of_a_miss_small() -> None:
    for mean in (0.5, 3.125, 12.5):
        j = scoring._poisson_quantile(mean, 1e-4)
        tail = 1 - sum(math.exp(-mean) * mean**i / math.factorial(i) for i in range(j - 1))
        assert tail <= 1e-4
        assert 1 - sum(math.exp(-mean) * mean**i / math.factorial(i) for i in range(j - 2)) > 1e-4
