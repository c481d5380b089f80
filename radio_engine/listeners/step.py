"""Apply a micro-batch of listen events to listener states with batched, order-keeping GRU steps.

Step k runs over every listener that has a k-th event in the batch, so the GRU is batched across
listeners while each listener's events are applied in their order. The inputs of every event
are built at once (one track lookup, one context call); a step only gathers and scatters rows
of the batch's hidden-state matrix. An event whose offset is at or below the listener's last
applied offset was applied before (a replay after a crash) and is skipped, so a redelivered
batch changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from radio_engine.listeners.events import ListenEvents
from radio_engine.listeners.history import Fold, fold_events, retried
from radio_engine.listeners.state import ListenerState
from radio_engine.model.inputs import context_features, step_inputs

StepFn = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
TrackInFn = Callable[[list[str], list[str]], np.ndarray]


def order_steps(listener_ids: Sequence[str]) -> list[np.ndarray]:
    """Indices of the batch grouped by step: step k holds every listener's k-th event."""
    return _steps(group_by_listener(listener_slots(listener_ids)[1]))


def listener_slots(listener_ids: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The batch's listeners in order of first appearance, and each event's slot among them."""
    slot: dict[str, int] = {}
    of = [slot.setdefault(lid, len(slot)) for lid in listener_ids]
    return list(slot), np.asarray(of, dtype=np.int64)


def group_by_listener(slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of `slots` sorted by slot (each listener's in arrival order), and where each
    listener's run starts in that order: the one grouping the steps, the gaps and the history
    fold share."""
    by_slot = np.argsort(slots, kind="stable")
    ordered = slots[by_slot]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    return by_slot, starts


def _steps(groups: tuple[np.ndarray, np.ndarray]) -> list[np.ndarray]:
    """Positions grouped by step (step k: every listener's k-th), each in arrival order."""
    by_slot, starts = groups
    n = by_slot.size
    if n == 0:
        return []
    rank = np.empty(n, dtype=np.int64)
    rank[by_slot] = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
    by_step = np.argsort(rank, kind="stable")
    return np.split(by_step, np.cumsum(np.bincount(rank))[:-1])


def apply_events(
    events: ListenEvents,
    states: dict[str, ListenerState],
    step_fn: StepFn,
    track_in_for: TrackInFn,
    history_length: int = 50,
    id_window: int = 32,
) -> tuple[np.ndarray, np.ndarray]:
    """Run the batch through the GRU in order; returns (q [n, query] float32, applied mask [n]).

    `states` must hold a state for every listener in the batch; they are updated in place
    (hidden state, offsets, history: `history.fold_events`). An event is skipped (a duplicate,
    its row of q zero) when its offset was applied before (a redelivery) or when its event_id
    is one of the listener's last `id_window` applied (a player's retry).
    """
    n = len(events)
    order, slots = listener_slots(events.listener_ids)
    batch_states = [states[lid] for lid in order]
    last_offset = np.fromiter((s.last_offset for s in batch_states), np.int64, len(order))
    offsets = np.asarray(events.offsets, dtype=np.int64)
    applied = offsets > last_offset[slots] if n else np.zeros(0, dtype=bool)
    fresh = np.flatnonzero(applied)
    id_hashes: dict[int, int] = {}
    if id_window > 0 and any(events.event_ids):
        retry, id_hashes = retried(events, fresh, slots, batch_states)
        applied[fresh[retry]] = False
        fresh = fresh[~retry]
    if fresh.size == 0:
        return np.zeros((n, 0), dtype=np.float32), applied
    fresh_slots = slots[fresh]
    groups = group_by_listener(fresh_slots)
    gaps = _gaps(np.asarray(events.ts, dtype=np.float64)[fresh], fresh_slots, groups, batch_states)
    context = context_features(
        events.feedback()[fresh],
        np.asarray(events.dwell, dtype=np.float64)[fresh],
        gaps,
        np.asarray(events.ts, dtype=np.float64)[fresh],
    )
    picked = fresh.tolist()
    tracks = [events.track_ids[i] for i in picked]
    artists = [events.artist_ids[i] for i in picked]
    x = step_inputs(track_in_for(tracks, artists), context)
    h = np.stack([s.h for s in batch_states]).astype(np.float32, copy=False)
    q_fresh: list[tuple[np.ndarray, np.ndarray]] = []
    for at in _steps(groups):
        rows = fresh_slots[at]
        h_next, q = step_fn(x[at], h[rows])
        h[rows] = h_next
        q_fresh.append((fresh[at], q))
    q_all = np.zeros((n, q_fresh[0][1].shape[1]), dtype=np.float32)
    for where, q in q_fresh:
        q_all[where] = q
    fold = Fold(fresh, fresh_slots, groups, gaps, id_hashes)
    fold_events(events, fold, batch_states, h, history_length, id_window)
    return q_all, applied


def _gaps(
    ts: np.ndarray,
    slots: np.ndarray,
    groups: tuple[np.ndarray, np.ndarray],
    states: list[ListenerState],
) -> np.ndarray:
    """Seconds since each event's previous one of the same listener (NaN: first ever); `ts`,
    `slots` and `groups` describe the applied events only."""
    before = np.array([s.last_ts if s.events else np.nan for s in states], dtype=np.float64)
    previous = before[slots]
    by_slot, starts = groups
    follows = np.ones(by_slot.size, dtype=bool)
    follows[starts] = False  # each listener's first event keeps its state's last_ts
    at = np.flatnonzero(follows)
    previous[by_slot[at]] = ts[by_slot[at - 1]]
    return ts - previous
