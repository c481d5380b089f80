"""The one function that computes the listener GRU's per-event inputs, for training and serving.

A step input is x = [track_in | context], where track_in comes from the track encoder (id,
artist and audio parts) and context is built here from the event alone. Training calls
`context_features` over whole arrays of events; the worker calls it over a micro-batch.
"""

from __future__ import annotations

import numpy as np

#: feedback types in one-hot order; index 0 is also what a replayed Last.fm scrobble becomes
FEEDBACK_TYPES: tuple[str, ...] = ("play", "skip", "complete", "like", "dislike")
FEEDBACK_INDEX = {name: i for i, name in enumerate(FEEDBACK_TYPES)}


def feedback_indices(kinds: np.ndarray | list[str]) -> np.ndarray:
    """int64 [n]: each feedback name (play, skip, ...) as its index into FEEDBACK_TYPES; an
    unknown name is an error, never silently a play."""
    names, inverse = np.unique(np.asarray(kinds).astype(str), return_inverse=True)
    unknown = sorted(set(names.tolist()) - set(FEEDBACK_INDEX))
    if unknown:
        raise ValueError(f"unknown event kinds {unknown}; known: {list(FEEDBACK_TYPES)}")
    return np.array([FEEDBACK_INDEX[n] for n in names], dtype=np.int64)[inverse.ravel()]


#: feedback that triggers a full catalog rescore instead of a pool re-rank
STRONG_FEEDBACK = frozenset({"skip", "like", "dislike"})

#: a gap longer than this starts a new listening session (seconds)
SESSION_GAP_S = 30 * 60.0

CONTEXT_NAMES: tuple[str, ...] = (
    *(f"feedback_{name}" for name in FEEDBACK_TYPES),
    "dwell_ratio",
    "dwell_known",
    "log_gap",
    "new_session",
    "tod_sin",
    "tod_cos",
)
CONTEXT_DIM = len(CONTEXT_NAMES)


def context_features(
    feedback: np.ndarray,
    dwell_ratio: np.ndarray,
    gap_s: np.ndarray,
    ts: np.ndarray,
) -> np.ndarray:
    """Context part of the step input, shape [B, CONTEXT_DIM], float32.

    feedback: int indices into FEEDBACK_TYPES; dwell_ratio: share heard (NaN when unknown);
    gap_s: seconds since the listener's previous event (NaN for a listener's first event);
    ts: event time in unix seconds (UTC time of day is used).
    """
    feedback = np.asarray(feedback, dtype=np.int64)
    n = feedback.shape[0]
    out = np.zeros((n, CONTEXT_DIM), dtype=np.float32)
    out[np.arange(n), feedback] = 1.0
    dwell = np.asarray(dwell_ratio, dtype=np.float64)
    known = ~np.isnan(dwell)
    out[:, 5] = np.where(known, np.clip(dwell, 0.0, 1.0), 0.0)
    out[:, 6] = known
    gap = np.asarray(gap_s, dtype=np.float64)
    first = np.isnan(gap)
    gap = np.where(first, 0.0, np.clip(gap, 0.0, None))
    out[:, 7] = np.log1p(gap) / 10.0
    out[:, 8] = first | (gap > SESSION_GAP_S)
    day_angle = 2.0 * np.pi * (np.asarray(ts, dtype=np.float64) % 86400.0) / 86400.0
    out[:, 9] = np.sin(day_angle)
    out[:, 10] = np.cos(day_angle)
    return out


def step_inputs(track_in: np.ndarray, context: np.ndarray) -> np.ndarray:
    """The GRU step input x = [track_in | context], float32 [B, Dt + CONTEXT_DIM]."""
    return np.concatenate([track_in, context], axis=1).astype(np.float32, copy=False)
