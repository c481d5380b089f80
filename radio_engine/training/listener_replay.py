"""Replay listeners' events through the served GRU (ONNX) to get the query after every event.

Events of all listeners are stepped together: step k runs one batched GRU call over every
listener that has a k-th event, in time order per listener (equal timestamps keep the order
given), exactly as the worker applies a micro-batch. The context features are those the worker
builds: every scrobble is a "play", dwell unknown (pct_played_derived leaks the next event's
time, so it is never used), gap since the listener's previous event, time of day.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tqdm import tqdm

from radio_engine.model.inputs import FEEDBACK_INDEX, context_features, step_inputs
from radio_engine.model.runtime import ServingModel
from radio_engine.training.pairs import EvalCatalog


def catalog_vectors(
    model: ServingModel, catalog: EvalCatalog, chunk: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """(track_in [N, D], track_out [N, Q]) of every candidate under this model.

    Tracks in the model's table use its stored vectors; any other track is encoded by the
    model's track encoder from what serving would know: no id (index 0), its artist's index
    (0 when the model never saw the artist) and no audio (30Music has none).
    """
    n = catalog.size
    index = np.array([model.track_index.get(t, 0) for t in catalog.track_ids], dtype=np.int64)
    known = index > 0
    track_in = np.zeros((n, model.dims.track_in), dtype=np.float32)
    track_out = np.zeros((n, model.dims.query), dtype=np.float32)
    track_in[known] = model.tracks.track_in[index[known] - 1]
    track_out[known] = model.tracks.track_out[index[known] - 1]
    new = np.flatnonzero(~known)
    names = np.append(catalog.artist_names, "")
    artist_of_new = names[catalog.artist_codes[new]]  # code -1 picks the trailing ''
    artist_index = np.array([model.artist_index.get(a, 0) for a in artist_of_new], np.int64)
    for lo in range(0, new.size, chunk):
        rows = new[lo : lo + chunk]
        m = rows.size
        t_in, t_out = model.encode_tracks(
            np.zeros(m, np.int64),
            artist_index[lo : lo + chunk],
            np.zeros((m, model.dims.audio_embedding), np.float32),
            np.zeros(m, np.float32),
        )
        track_in[rows] = t_in
        track_out[rows] = t_out
    return track_in, track_out


def replay_queries(
    model: ServingModel,
    track_in: np.ndarray,
    rows: Sequence[np.ndarray],
    users: Sequence[np.ndarray],
    ts: Sequence[np.ndarray],
    progress: bool = False,
    feedback: Sequence[np.ndarray] | None = None,
) -> list[np.ndarray]:
    """The query q after every event of each event set, stepping all sets together in time.

    rows/users/ts: one array per event set (e.g. train, then test), in the sets' own order;
    rows index track_in (every event's track must have a row); feedback: indices into
    FEEDBACK_TYPES per set (default: every event a play, as a Last.fm scrobble is).
    Returns q [E_i, Q] per set.
    """
    sizes = [len(r) for r in rows]
    all_rows = np.concatenate(rows).astype(np.int64)
    if (all_rows < 0).any():
        raise ValueError("every replayed event needs a candidate row (build the catalog from them)")
    all_users = np.concatenate([np.asarray(u).astype(str) for u in users])
    all_ts = np.concatenate([np.asarray(t, dtype=np.float64) for t in ts])
    n = all_rows.size
    listener_names, listener = np.unique(all_users, return_inverse=True)
    order = np.lexsort((np.arange(n), all_ts, listener))
    lst = listener[order]
    first = np.ones(n, dtype=bool)
    first[1:] = lst[1:] != lst[:-1]
    step_of = np.arange(n) - np.maximum.accumulate(np.where(first, np.arange(n), 0))
    sorted_ts = all_ts[order]
    gap = np.where(first, np.nan, sorted_ts - np.roll(sorted_ts, 1))
    kinds = (
        np.full(n, FEEDBACK_INDEX["play"])
        if feedback is None
        else np.concatenate([np.asarray(f, np.int64) for f in feedback])[order]
    )
    context = context_features(kinds, np.full(n, np.nan), gap, sorted_ts)
    h = np.broadcast_to(model.h0, (listener_names.size, model.h0.shape[0])).copy()
    q_sorted = np.zeros((n, model.dims.query), dtype=np.float32)
    by_step = np.argsort(step_of, kind="stable")
    bounds = np.searchsorted(step_of[by_step], np.arange(step_of.max(initial=-1) + 2))
    for k in tqdm(range(bounds.size - 1), desc="replay", unit="step", disable=not progress):
        at = by_step[bounds[k] : bounds[k + 1]]
        who = lst[at]
        x = step_inputs(track_in[all_rows[order[at]]], context[at])
        h_next, q = model.step(x, h[who])
        h[who] = h_next
        q_sorted[at] = q
    q_all = np.empty_like(q_sorted)
    q_all[order] = q_sorted
    return np.split(q_all, np.cumsum(sizes)[:-1])
