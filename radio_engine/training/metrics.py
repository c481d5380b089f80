"""Ranking metrics for next-track prediction: ranks, HR@k, MRR@k, coverage and diversity.

Ties are broken uniformly at random, in expectation: a target tied with e - 1 other candidates
below h better ones lands on each of the ranks h+1 .. h+e with chance 1/e. So no method gains
or loses from the order of tied candidates: a method that scores everything 0 gets the chance
rate, and a method that adds noise to break ties gains nothing. (session-rec counts ties in the
target's favour, which lifts sparse methods such as Markov and SR.) Top-k lists must be concrete:
there, ties follow a fixed order given by the caller (evaluate uses a seeded random order).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: best/worst rank of a target that is not among the candidates at all (always a miss)
MISS = np.iinfo(np.int64).max // 2


@dataclass(frozen=True)
class Ranks:
    """Where each target lands: best = 1 + candidates scoring higher; worst = best + the other
    candidates tied with it. Equal when nothing ties."""

    best: np.ndarray
    worst: np.ndarray

    @property
    def size(self) -> int:
        return int(self.best.shape[0])

    def __getitem__(self, select: np.ndarray | slice) -> Ranks:
        return Ranks(self.best[select], self.worst[select])

    @classmethod
    def concat(cls, parts: list[Ranks]) -> Ranks:
        """One Ranks from batches."""
        if not parts:
            return cls(np.zeros(0, np.int64), np.zeros(0, np.int64))
        return cls(
            np.concatenate([p.best for p in parts]), np.concatenate([p.worst for p in parts])
        )


def ranks(scores: np.ndarray, targets: np.ndarray) -> Ranks:
    """Best and worst 1-based rank of each row's target column in scores [B, N].

    Targets < 0 (not a candidate) get MISS for both.
    """
    scores = np.asarray(scores)
    targets = np.asarray(targets, dtype=np.int64)
    best = np.full(targets.shape[0], MISS, dtype=np.int64)
    worst = best.copy()
    known = np.flatnonzero(targets >= 0)
    if known.size:
        rows = scores[known]
        target_scores = rows[np.arange(known.size), targets[known]][:, None]
        best[known] = 1 + (rows > target_scores).sum(axis=1)
        worst[known] = (rows >= target_scores).sum(axis=1)
    return Ranks(best, worst)


def _first_tied(
    row: np.ndarray, value: float, room: int, tie_order: np.ndarray | None, rank_of: np.ndarray
) -> np.ndarray:
    """The `room` columns of row equal to value that come first in the tie order."""
    equal = row == value
    if tie_order is None:
        return np.flatnonzero(equal)[:room]
    n_equal = int(np.count_nonzero(equal))
    if n_equal <= 8192:
        tied = np.flatnonzero(equal)
        return tied[np.argsort(rank_of[tied], kind="stable")[:room]]
    # most of the row ties: walk the tie order until enough tied columns turn up
    chunk = min(row.size, 2 * room * row.size // n_equal + 64)
    while True:
        head = tie_order[:chunk]
        hits = head[equal[head]]
        if hits.size >= room or chunk == row.size:
            return hits[:room]
        chunk = min(row.size, 2 * chunk)


def top_k(scores: np.ndarray, k: int, tie_order: np.ndarray | None = None) -> np.ndarray:
    """Column indices of the k best candidates per row [B, k], best first.

    Ties go to the column that comes first in tie_order (a permutation of the columns; default:
    the lower column). Scores are compared as float32 (every scorer here produces float32).
    """
    scores = np.asarray(scores, dtype=np.float32) + np.float32(0.0)  # -0.0 becomes 0.0
    n_rows, n = scores.shape
    k = min(k, n)
    if k <= 0 or n_rows == 0:
        return np.zeros((n_rows, k), dtype=np.int64)
    rank_of = np.arange(n)
    if tie_order is not None:
        tie_order = np.asarray(tie_order, dtype=np.int64)
        rank_of = np.empty(n, dtype=np.int64)
        rank_of[tie_order] = np.arange(n)
    # 1. a threshold from a strided sample: the sample's k-th best is <= the row's k-th best
    sample = scores[:, :: max(1, n // (256 * k))]
    threshold = np.partition(sample, sample.shape[1] - k, axis=1)[:, -k]
    # 2. everything strictly above it, plus, where that is fewer than k, the tied columns
    #    that come first (then the threshold is exactly the k-th best score)
    r, c = np.nonzero(scores > threshold[:, None])
    counts = np.bincount(r, minlength=n_rows)
    extra_r, extra_c = [r], [c]
    for i in np.flatnonzero(counts < k):
        tied = _first_tied(scores[i], threshold[i], k - counts[i], tie_order, rank_of)
        extra_r.append(np.full(tied.size, i))
        extra_c.append(tied)
    r, c = np.concatenate(extra_r), np.concatenate(extra_c)
    # 3. order the survivors by (row, score desc, tie order) and keep k per row
    order = np.lexsort((rank_of[c], -scores[r, c], r))
    r, c = r[order], c[order]
    starts = np.searchsorted(r, np.arange(n_rows))
    keep = np.arange(r.size) - starts[r] < k
    return c[keep].reshape(n_rows, k).astype(np.int64)


def hits(r: Ranks, k: int) -> np.ndarray:
    """Per target: chance [0, 1] of being in the top k, tied candidates in random order."""
    tied = r.worst - r.best + 1
    return np.clip(k - (r.best - 1), 0, tied) / tied


def reciprocal_ranks(r: Ranks, k: int) -> np.ndarray:
    """Per target: expected 1/rank (0 beyond k), tied candidates in random order."""
    harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, k + 1))])
    hi = np.minimum(r.worst, k)
    lo = np.minimum(r.best - 1, k)
    return (harmonic[hi] - harmonic[lo]) / (r.worst - r.best + 1)


def hit_rate(r: Ranks, k: int) -> float:
    """HR@k: expected share of targets in the top k, tied candidates in random order."""
    return float(np.mean(hits(r, k))) if r.size else 0.0


def mrr(r: Ranks, k: int) -> float:
    """MRR@k: expected 1/rank (0 beyond k), tied candidates in random order."""
    return float(np.mean(reciprocal_ranks(r, k))) if r.size else 0.0


def catalog_coverage(lists: np.ndarray, n_candidates: int) -> float:
    """Share of the candidates that appear in at least one top-k list [B, k]."""
    lists = np.asarray(lists)
    if n_candidates <= 0 or lists.size == 0:
        return 0.0
    return float(np.unique(lists[lists >= 0]).size / n_candidates)


def artist_diversity(lists: np.ndarray, artist_codes: np.ndarray) -> float:
    """Mean share of distinct artists in a top-k list [B, k] (1.0: every track a new artist).

    artist_codes [N] gives each candidate's artist; a negative code (unknown artist) counts
    as its own artist for every track, so unknown artists never lower diversity.
    """
    lists = np.asarray(lists)
    if lists.size == 0:
        return 0.0
    codes = np.asarray(artist_codes)[lists]
    # unknown artists: give each slot a distinct code beyond the known ones
    unknown = codes < 0
    codes = np.where(unknown, -1 - np.arange(codes.size).reshape(codes.shape), codes)
    ordered = np.sort(codes, axis=1)
    distinct = 1 + (ordered[:, 1:] != ordered[:, :-1]).sum(axis=1)
    return float(np.mean(distinct / lists.shape[1]))
