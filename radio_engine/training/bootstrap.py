"""Confidence intervals for "method A minus method B" on the same pairs: a paired bootstrap.

Pairs of one session are not independent (the same listener, the same tracks), so whole
sessions are resampled (a cluster bootstrap), and both methods are measured on each resample:
the interval is that of the difference, not two intervals compared by eye. Each resample
weighs every session by a Poisson(1) count (the Poisson bootstrap: the multinomial draw's
large-sample form), generated in chunks, so memory stays small for any number of sessions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: resamples drawn (a common size for 95 % percentile intervals)
DRAWS = 2000
#: session weights generated at a time (floats), bounding memory
CHUNK_CELLS = 4_000_000


@dataclass(frozen=True)
class Difference:
    """mean(a) - mean(b) over all pairs and its 95 % percentile interval."""

    value: float
    low: float
    high: float

    @property
    def clear(self) -> bool:
        """The interval excludes 0: the sign of the difference is not a resampling accident."""
        return self.low > 0.0 or self.high < 0.0

    def to_dict(self) -> dict[str, float]:
        return {"diff": self.value, "low": self.low, "high": self.high}


class SessionBootstrap:
    """Seeded session resamples: every comparison (and every call) sees the same draws."""

    def __init__(self, groups: np.ndarray, draws: int = DRAWS, seed: int = 0) -> None:
        """groups [M]: the session of each pair."""
        _, session = np.unique(np.asarray(groups), return_inverse=True)
        self.session = session.ravel()
        self.n_sessions = int(self.session.max()) + 1 if self.session.size else 0
        self.draws = draws
        self.seed = seed

    def difference(self, a: np.ndarray, b: np.ndarray) -> Difference:
        """mean(a - b) and its 95 % interval; a, b [M] per-pair values of two methods (a hit,
        a reciprocal rank) on the same pairs."""
        return self.differences([(a, b)])[0]

    def differences(self, comparisons: list[tuple[np.ndarray, np.ndarray]]) -> list[Difference]:
        """difference(a, b) for several (a, b), in one pass over the resamples."""
        diffs = []
        for a, b in comparisons:
            a = np.asarray(a, dtype=np.float64)
            b = np.asarray(b, dtype=np.float64)
            if a.shape != self.session.shape or b.shape != self.session.shape:
                raise ValueError(
                    f"need one value per pair ({self.session.size}), got {a.shape}, {b.shape}"
                )
            diffs.append(a - b)
        if not diffs:
            return []
        if self.session.size == 0:
            return [Difference(0.0, 0.0, 0.0) for _ in diffs]
        sums = np.stack(
            [np.bincount(self.session, weights=d, minlength=self.n_sessions) for d in diffs]
        )
        count = np.bincount(self.session, minlength=self.n_sessions).astype(np.float64)
        rng = np.random.default_rng(self.seed)
        resampled = np.empty((self.draws, len(diffs)))
        step = max(1, CHUNK_CELLS // self.n_sessions)
        for lo in range(0, self.draws, step):
            n = min(step, self.draws - lo)
            weights = rng.poisson(1.0, size=(n, self.n_sessions)).astype(np.float64)
            resampled[lo : lo + n] = (weights @ sums.T) / np.maximum(weights @ count, 1.0)[:, None]
        low, high = np.percentile(resampled, [2.5, 97.5], axis=0)
        return [
            Difference(float(d.mean()), float(lo_), float(hi_))
            for d, lo_, hi_ in zip(diffs, low, high, strict=True)
        ]
