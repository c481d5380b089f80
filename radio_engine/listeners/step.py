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
from radio_engine.listeners.history import fold_events, retried
from radio_engine.listeners.state import ListenerState
from radio_engine.model.inputs import context_features, step_inputs

StepFn = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
TrackInFn = Callable[[list[str], list[str]], np.ndarray]


def order_steps(listener_ids: Sequence[str]) -> list[np.ndarray]:
    """Indices of the batch grouped by step: step k holds every listener's k-th event."""
    slots = listener_slots(listener_ids)[1]
    return _steps(np.arange(len(listener_ids)), slots)


def listener_slots(listener_ids: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The batch's listeners in order of first appearance, and each event's slot among them."""
    slot: dict[str, int] = {}
    of = [slot.setdefault(lid, len(slot)) for lid in listener_ids]
    return list(slot), np.asarray(of, dtype=np.int64)


def _steps(events: np.ndarray, slots: np.ndarray) -> list[np.ndarray]:
    """`events` (in order) grouped by step, given each one's listener slot."""
    if events.size == 0:
        return []
    by_slot = np.argsort(slots, kind="stable")
    ordered = slots[by_slot]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    rank = np.empty(events.size, dtype=np.int64)
    rank[by_slot] = np.arange(events.size) - np.repeat(starts, np.diff(np.r_[starts, events.size]))
    by_step = np.argsort(rank, kind="stable")
    bounds = np.cumsum(np.bincount(rank))[:-1]
    return [events[s] for s in np.split(by_step, bounds)]


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
    if id_window > 0 and any(events.event_ids):
        retry = retried(events, fresh, slots, batch_states)
        applied[fresh[retry]] = False
        fresh = fresh[~retry]
    if fresh.size == 0:
        return np.zeros((n, 0), dtype=np.float32), applied
    gaps = _gaps(np.asarray(events.ts, dtype=np.float64), slots, fresh, batch_states)
    context = context_features(
        events.feedback()[fresh],
        np.asarray(events.dwell, dtype=np.float64)[fresh],
        gaps,
        np.asarray(events.ts, dtype=np.float64)[fresh],
    )
    tracks = [events.track_ids[i] for i in fresh.tolist()]
    artists = [events.artist_ids[i] for i in fresh.tolist()]
    x = step_inputs(track_in_for(tracks, artists), context)
    h = np.stack([s.h for s in batch_states]).astype(np.float32, copy=False)
    fresh_slots = slots[fresh]
    q_fresh: list[tuple[np.ndarray, np.ndarray]] = []
    for at in _steps(np.arange(fresh.size), fresh_slots):
        rows = fresh_slots[at]
        h_next, q = step_fn(x[at], h[rows])
        h[rows] = h_next
        q_fresh.append((fresh[at], q))
    q_all = np.zeros((n, q_fresh[0][1].shape[1]), dtype=np.float32)
    for where, q in q_fresh:
        q_all[where] = q
    fold_events(events, fresh, fresh_slots, gaps, batch_states, h, history_length, id_window)
    return q_all, applied


def _gaps(
    ts: np.ndarray, slots: np.ndarray, fresh: np.ndarray, states: list[ListenerState]
) -> np.ndarray:
    """Seconds since each fresh event's previous one of the same listener (NaN: first ever)."""
    fresh_ts, fresh_slots = ts[fresh], slots[fresh]
    before = np.array([s.last_ts if s.events else np.nan for s in states], dtype=np.float64)
    previous = before[fresh_slots]
    by_slot = np.argsort(fresh_slots, kind="stable")
    same = fresh_slots[by_slot][1:] == fresh_slots[by_slot][:-1]
    follow = by_slot[1:][same]
    previous[follow] = fresh_ts[by_slot[:-1][same]]
    return fresh_ts - previous
