"""Exact top-k of many queries over a whole catalog, blocked so top-k never sorts everything.

Scores are q . track_out. The catalog is walked in blocks of rows; each block is one sgemm for
all queries of the batch. Stage one keeps the best k of each block, stage two merges them into
the running best k. Once every query holds k winners, a block row can only matter if it beats
the query's current k-th score, and most rows do not: such blocks skip the argpartition and
merge just the few rows above the bar. The answer is exact: the same rows as a full sort, up to
rows tied at the k-th score.
"""

from __future__ import annotations

import numpy as np

#: rows scored per block: the block's scores [B, block] should stay in cache
DEFAULT_BLOCK = 16384


def top_k_rows(
    queries: np.ndarray,
    matrix: np.ndarray,
    k: int,
    active: np.ndarray | None = None,
    block: int = DEFAULT_BLOCK,
    prune: bool = True,
) -> np.ndarray:
    """Row indices [B, k'] of the k best-scoring active rows for each query, best first.

    k' = min(k, active rows). Equal scores are listed in row order; which of several rows tied
    at the k-th score make the cut is left to argpartition (deterministic). `prune=False` runs the plain two-stage
    merge (every block partitioned), kept for the benchmark.
    """
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    b, n = queries.shape[0], matrix.shape[0]
    dead = None
    if active is not None:
        active = np.asarray(active[:n], dtype=bool)
        live = int(np.count_nonzero(active))
        if live < n:
            dead = np.flatnonzero(~active)
        k = min(k, live)
    k = min(k, n)
    if k <= 0 or b == 0:
        return np.zeros((b, 0), dtype=np.int64)
    best_rows = np.zeros((b, 0), dtype=np.int64)
    best_scores = np.zeros((b, 0), dtype=np.float32)
    for start in range(0, n, block):
        stop = min(start + block, n)
        scores = queries @ matrix[start:stop].T
        if dead is not None:
            lo, hi = np.searchsorted(dead, (start, stop))
            scores[:, dead[lo:hi] - start] = -np.inf
        if prune and best_rows.shape[1] == k:
            merged = _merge_above_bar(best_rows, best_scores, scores, start)
            if merged is not None:
                best_rows, best_scores = merged
                continue
        rows, top = _block_top(scores, k, start)
        best_rows, best_scores = _keep_best(
            np.concatenate([best_rows, rows], axis=1),
            np.concatenate([best_scores, top], axis=1),
            k,
        )
    return _sorted(best_rows, best_scores)


def _block_top(scores: np.ndarray, k: int, start: int) -> tuple[np.ndarray, np.ndarray]:
    """Stage one: the best k columns of one block's scores, as global rows and their scores."""
    m = scores.shape[1]
    if m <= k:
        rows = np.broadcast_to(np.arange(start, start + m, dtype=np.int64), scores.shape)
        return rows, scores
    part = np.argpartition(scores, m - k, axis=1)[:, m - k :]
    return part + start, np.take_along_axis(scores, part, axis=1)


def _keep_best(rows: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Stage two: the best k of each query's candidates."""
    w = rows.shape[1]
    if w <= k:
        return rows, scores
    part = np.argpartition(scores, w - k, axis=1)[:, w - k :]
    return np.take_along_axis(rows, part, axis=1), np.take_along_axis(scores, part, axis=1)


def _merge_above_bar(
    best_rows: np.ndarray, best_scores: np.ndarray, scores: np.ndarray, start: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Merge only the block's rows that beat each query's current k-th score.

    Returns None when too many rows beat it (the block's own top-k is then cheaper).
    """
    k = best_rows.shape[1]
    b, m = scores.shape
    bar = best_scores.min(axis=1)
    flat = np.flatnonzero(scores > bar[:, None])  # 1-D nonzero: far cheaper than 2-D
    if flat.size == 0:
        return best_rows, best_scores
    q_idx, cols = np.divmod(flat, m)
    counts = np.bincount(q_idx, minlength=b)
    most = int(counts.max())
    if most > max(k, m // 32):
        return None
    slot = k + np.arange(flat.size) - (np.cumsum(counts) - counts)[q_idx]
    rows = np.full((b, k + most), -1, dtype=np.int64)
    cand = np.full((b, k + most), -np.inf, dtype=np.float32)
    rows[:, :k], cand[:, :k] = best_rows, best_scores
    rows[q_idx, slot] = cols + start
    cand[q_idx, slot] = scores.ravel()[flat]
    return _keep_best(rows, cand, k)


def _sorted(rows: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Rows best first, equal scores in row order."""
    by_row = np.argsort(rows, axis=1, kind="stable")
    rows = np.take_along_axis(rows, by_row, axis=1)
    scores = np.take_along_axis(scores, by_row, axis=1)
    order = np.argsort(-scores, axis=1, kind="stable")
    return np.take_along_axis(rows, order, axis=1)


def top_k_naive(queries: np.ndarray, matrix: np.ndarray, k: int) -> np.ndarray:
    """Reference: full product and a full sort (the baseline the benchmark compares against)."""
    scores = np.asarray(queries, dtype=np.float32) @ matrix.T
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]
