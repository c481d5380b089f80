"""Exact top-k of many queries over a whole catalog, blocked so top-k never sorts everything.

Scores are q . track_out. Each block of rows gives its own top-k by argpartition; the union of
block winners is small, and a second argpartition over it gives the exact answer. Batched across
listeners, the product is one sgemm per block.
"""

from __future__ import annotations

import numpy as np


def top_k_rows(
    queries: np.ndarray,
    matrix: np.ndarray,
    k: int,
    active: np.ndarray | None = None,
    block: int = 65536,
) -> np.ndarray:
    """Row indices [B, k'] of the k best-scoring active rows for each query, best first."""
    n = matrix.shape[0]
    k = min(k, n)
    if k == 0 or queries.shape[0] == 0:
        return np.zeros((queries.shape[0], 0), dtype=np.int64)
    winners: list[np.ndarray] = []
    winner_scores: list[np.ndarray] = []
    for start in range(0, n, block):
        scores = queries @ matrix[start : start + block].T
        if active is not None:
            scores[:, ~active[start : start + block]] = -np.inf
        kk = min(k, scores.shape[1])
        part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        winners.append(part + start)
        winner_scores.append(np.take_along_axis(scores, part, axis=1))
    rows = np.concatenate(winners, axis=1)
    scores = np.concatenate(winner_scores, axis=1)
    if rows.shape[1] > k:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        rows = np.take_along_axis(rows, part, axis=1)
        scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-scores, axis=1, kind="stable")
    best = np.take_along_axis(rows, order, axis=1)
    if active is not None:
        # fewer active rows than k: drop the -inf fillers
        keep = np.isfinite(np.take_along_axis(scores, order, axis=1))
        if not keep.all():
            width = int(keep.sum(axis=1).min())
            best = best[:, :width]
    return best


def top_k_naive(queries: np.ndarray, matrix: np.ndarray, k: int) -> np.ndarray:
    """Reference: full product and a full sort (the baseline the benchmark compares against)."""
    scores = queries @ matrix.T
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]
