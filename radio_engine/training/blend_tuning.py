"""Tuning the served blend's weights on validation pairs: exact HR@k / MRR@k, fast per trial.

A trial scores each pair's short list instead of the whole catalog. The list holds every
candidate that a sparse signal touches (rules, artist, in-session) and the target. The others
differ only in GRU score and popularity, so they are kept as counts per popularity value (for
a blend without GRU: exact, ties included) and, when a GRU is blended in, as the k best GRU
scores of each popularity value: a candidate left out is beaten by k kept ones of its own
popularity, so whenever it would outrank the target the target is out of the top k anyway.
Results equal `training.metrics` on the full ranking, up to exact ties between GRU scores.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from radio_engine.selector.blend import BlendWeights
from radio_engine.training.metrics import Ranks, hit_rate, mrr

#: the signals of a list entry, in column order
SIGNALS = ("gru", "rules", "last_artist", "session_artist", "in_session", "popularity")

#: values tried for each weight in the coordinate search (rules is fixed at 1: the scale;
#: gru stays >= 0, which the short lists rely on)
GRID: dict[str, tuple[float, ...]] = {
    # the small values: a GRU whose score spreads over tens of units only breaks the blend's ties
    "gru": (
        0.0,
        0.0003,
        0.001,
        0.003,
        0.01,
        0.02,
        0.03,
        0.05,
        0.1,
        0.2,
        0.3,
        0.5,
        0.75,
        1.0,
        1.5,
        2.0,
        3.0,
        5.0,
    ),
    "last_artist": (-1.0, 0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0),
    "session_artist": (-1.0, -0.5, 0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0),
    "in_session": (-3.0, -1.0, 0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0),
    "popularity": (0.0, 0.001, 0.01, 0.03, 0.1, 0.3, 1.0),
}


def _weight_vector(weights: BlendWeights) -> np.ndarray:
    return np.array([getattr(weights, s) for s in SIGNALS], dtype=np.float32)


@dataclass(frozen=True)
class BlendProblem:
    """Validation pairs as short lists of candidate signals, for tuning the blend weights.

    features [M, 6] in SIGNALS order (log1p of rules and popularity already taken); target [M]
    marks each pair's target; kept [M] marks entries kept only for their GRU score; offsets
    [P+1]. group_values [G]: the log1p(popularity) values; unlisted [P, G]: per pair, candidates
    outside the list with that popularity. has_gru: the lists carry GRU scores.
    """

    features: np.ndarray
    target: np.ndarray
    kept: np.ndarray
    offsets: np.ndarray
    group_values: np.ndarray
    unlisted: np.ndarray
    has_gru: bool

    @property
    def size(self) -> int:
        return int(self.offsets.shape[0] - 1)

    @classmethod
    def concat(cls, parts: Iterable[BlendProblem]) -> BlendProblem:
        """One problem from batches of pairs built over the same candidates."""
        parts = [p for p in parts if p.size]
        if not parts:
            return cls(
                np.zeros((0, len(SIGNALS)), np.float32),
                np.zeros(0, bool),
                np.zeros(0, bool),
                np.zeros(1, np.int64),
                np.zeros(0, np.float32),
                np.zeros((0, 0), np.int64),
                False,
            )
        offsets = [np.zeros(1, dtype=np.int64)]
        base = 0
        for p in parts:
            if not np.array_equal(p.group_values, parts[0].group_values):
                raise ValueError("blend problems over different candidates cannot be joined")
            offsets.append(p.offsets[1:] + base)
            base += int(p.offsets[-1])
        return cls(
            features=np.concatenate([p.features for p in parts]),
            target=np.concatenate([p.target for p in parts]),
            kept=np.concatenate([p.kept for p in parts]),
            offsets=np.concatenate(offsets),
            group_values=parts[0].group_values,
            unlisted=np.concatenate([p.unlisted for p in parts]),
            has_gru=any(p.has_gru for p in parts),
        )

    @classmethod
    def from_dense(
        cls,
        gru_scores: np.ndarray | None,
        rule_scores: np.ndarray,
        last_artist: np.ndarray,
        session_artist: np.ndarray,
        in_session: np.ndarray,
        popularity: np.ndarray,
        targets: np.ndarray,
        k: int = 20,
    ) -> BlendProblem:
        """Short lists from one batch of dense [B, N] signals; pairs with target < 0 are dropped."""
        targets = np.asarray(targets, dtype=np.int64)
        keep = np.flatnonzero(targets >= 0)
        rule_scores = np.asarray(rule_scores, dtype=np.float32)[keep]
        same = np.asarray(last_artist, dtype=bool)[keep]
        in_artist = np.asarray(session_artist, dtype=bool)[keep]
        in_track = np.asarray(in_session, dtype=bool)[keep]
        gru = None if gru_scores is None else np.asarray(gru_scores, dtype=np.float32)[keep]
        targets = targets[keep]
        b = rule_scores.shape[0]
        log_pop = np.log1p(np.asarray(popularity, dtype=np.float32))
        group_values, group_of = np.unique(log_pop, return_inverse=True)
        n_groups = group_values.size
        rows = np.arange(b)

        listed = (rule_scores > 0) | same | in_artist | in_track
        listed[rows, targets] = True
        r, c = np.nonzero(listed)
        listed_per_group = np.bincount(r * n_groups + group_of[c], minlength=b * n_groups)
        unlisted = np.bincount(group_of, minlength=n_groups)[None, :] - listed_per_group.reshape(
            b, n_groups
        )
        kept_r, kept_c = _best_per_group(gru, listed, group_of, n_groups, k)
        all_r = np.concatenate([r, kept_r])
        all_c = np.concatenate([c, kept_c])
        order = np.argsort(all_r, kind="stable")
        all_r, all_c = all_r[order], all_c[order]
        kept = np.concatenate([np.zeros(r.size, bool), np.ones(kept_r.size, bool)])[order]
        features = np.stack(
            [
                np.zeros(all_r.size, np.float32) if gru is None else gru[all_r, all_c],
                np.log1p(rule_scores[all_r, all_c]),
                same[all_r, all_c],
                in_artist[all_r, all_c],
                in_track[all_r, all_c],
                log_pop[all_c],
            ],
            axis=1,
        ).astype(np.float32)
        offsets = np.zeros(b + 1, dtype=np.int64)
        np.cumsum(np.bincount(all_r, minlength=b), out=offsets[1:])
        return cls(
            features=features,
            target=(all_c == targets[all_r]) & ~kept,
            kept=kept,
            offsets=offsets,
            group_values=group_values.astype(np.float32),
            unlisted=unlisted.astype(np.int64),
            has_gru=gru is not None,
        )

    def ranks(self, weights: BlendWeights) -> Ranks:
        """Best and worst rank of each pair's target under these weights (as metrics.ranks)."""
        w = _weight_vector(weights)
        score = self.features @ w
        lengths = np.diff(self.offsets)
        target_score = score[np.flatnonzero(self.target)]
        per_entry = np.repeat(target_score, lengths)
        starts = self.offsets[:-1]
        by_groups = not (self.has_gru and weights.gru > 0)
        # with the GRU off, the kept entries are among the unlisted counts: count groups instead
        counted = ~self.kept if by_groups else np.ones(score.size, bool)
        higher = np.add.reduceat(((score > per_entry) & counted).astype(np.int64), starts)
        at_least = np.add.reduceat(((score >= per_entry) & counted).astype(np.int64), starts)
        if by_groups and self.group_values.size:
            group_rows = np.zeros((self.group_values.size, len(SIGNALS)), np.float32)
            group_rows[:, SIGNALS.index("popularity")] = self.group_values
            group_score = (group_rows @ w)[None, :]
            higher += (self.unlisted * (group_score > target_score[:, None])).sum(axis=1)
            at_least += (self.unlisted * (group_score >= target_score[:, None])).sum(axis=1)
        return Ranks(1 + higher, at_least)


def _best_per_group(
    gru: np.ndarray | None, listed: np.ndarray, group_of: np.ndarray, n_groups: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of the k best GRU scores of each popularity group, outside the lists."""
    if gru is None or k <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.argsort(group_of, kind="stable")
    bounds = np.searchsorted(group_of[order], np.arange(n_groups + 1))
    masked = np.where(listed[:, order], -np.inf, gru[:, order])
    out_r, out_c = [], []
    for g in range(n_groups):
        block = masked[:, bounds[g] : bounds[g + 1]]
        if block.shape[1] > k:
            pick = np.argpartition(-block, k - 1, axis=1)[:, :k]
        else:
            pick = np.broadcast_to(np.arange(block.shape[1]), (block.shape[0], block.shape[1]))
        values = np.take_along_axis(block, pick, axis=1)
        rr, jj = np.nonzero(np.isfinite(values))
        out_r.append(rr)
        out_c.append(order[bounds[g] + pick[rr, jj]])
    return np.concatenate(out_r), np.concatenate(out_c)


def tune_blend(
    problem: BlendProblem,
    k: int = 20,
    start: BlendWeights | None = None,
    tune: Iterable[str] = ("gru", "last_artist", "session_artist", "in_session", "popularity"),
    rounds: int = 3,
) -> tuple[BlendWeights, dict[str, float]]:
    """Coordinate search of the weights for HR@k + MRR@k on VALIDATION pairs only.

    Both metrics count (the model is judged on both), so the objective is their sum: ranking
    for HR alone bought a pair or two in the top k at the price of the order inside it.
    Returns the best weights and {"hr", "mrr", "pairs"} on the problem. Leave "gru" out of
    `tune` (and start with gru=0) to tune the blend baseline.
    """
    best = start or BlendWeights()
    names = [n for n in tune if n in GRID]
    if problem.size == 0:
        return best, {"hr": 0.0, "mrr": 0.0, "pairs": 0}

    def objective(w: BlendWeights) -> tuple[float, float]:
        r = problem.ranks(w)
        return hit_rate(r, k), mrr(r, k)

    def better(a: tuple[float, float], b: tuple[float, float]) -> bool:
        return sum(a) > sum(b)

    best_value = objective(best)
    for _ in range(rounds):
        improved = False
        for name in names:
            for value in GRID[name]:
                trial = best.replace(**{name: value})
                result = objective(trial)
                if better(result, best_value):
                    best, best_value, improved = trial, result, True
        if not improved:
            break
    return best, {"hr": best_value[0], "mrr": best_value[1], "pairs": problem.size}
