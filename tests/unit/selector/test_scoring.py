"""Blocked two-stage top-k is exact: the same rows as a full sort, for every block layout."""

from __future__ import annotations

import numpy as np
import pytest

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
