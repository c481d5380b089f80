"""Apply a micro-batch of listen events to listener states with batched, order-keeping GRU steps.

Step k runs over every listener that has a k-th event in the batch, so the GRU is batched across
listeners while each listener's events are applied in their order. An event whose offset is at
or below the listener's last applied offset was applied before (a replay after a crash) and is
skipped, so a redelivered batch changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from radio_engine.listeners.state import UNRESOLVED, ListenerState, aligned_rows
from radio_engine.model.inputs import FEEDBACK_INDEX, SESSION_GAP_S, context_features, step_inputs

#: dislikes remembered per listener (at least; history_length when larger): a dislike is for good
DISLIKES_KEPT = 500

StepFn = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
TrackInFn = Callable[[list[str], list[str]], np.ndarray]


@dataclass(frozen=True)
class ListenEvent:
    """One decoded, valid listen event and where it came from."""

    listener_id: str
    track_id: str
    event: str
    ts: float
    artist_id: str = ""
    dwell_ratio: float = float("nan")
    event_id: str = ""
    partition: int = 0
    offset: int = 0
    kafka_ts: float = 0.0


def order_steps(listener_ids: Sequence[str]) -> list[np.ndarray]:
    """Indices of the batch grouped by step: step k holds every listener's k-th event."""
    seen: dict[str, int] = {}
    steps: list[list[int]] = []
    for i, listener in enumerate(listener_ids):
        k = seen.get(listener, 0)
        seen[listener] = k + 1
        if k == len(steps):
            steps.append([])
        steps[k].append(i)
    return [np.asarray(s, dtype=np.int64) for s in steps]


def apply_events(
    events: Sequence[ListenEvent],
    states: dict[str, ListenerState],
    step_fn: StepFn,
    track_in_for: TrackInFn,
    history_length: int = 50,
) -> tuple[np.ndarray, np.ndarray]:
    """Run the batch through the GRU in order; returns (q [n, query] float32, applied mask [n]).

    `states` must hold a state for every listener in the batch; they are updated in place.
    Rows of q for skipped (duplicate) events are zero.
    """
    n = len(events)
    applied = np.zeros(n, dtype=bool)
    q_all: np.ndarray | None = None
    for idx in order_steps([e.listener_id for e in events]):
        fresh = [i for i in idx if events[i].offset > states[events[i].listener_id].last_offset]
        if not fresh:
            continue
        batch = [events[i] for i in fresh]
        batch_states = [states[e.listener_id] for e in batch]
        track_in = track_in_for([e.track_id for e in batch], [e.artist_id for e in batch])
        gaps = np.array(
            [
                e.ts - s.last_ts if s.events else np.nan
                for e, s in zip(batch, batch_states, strict=True)
            ]
        )
        context = context_features(
            np.array([FEEDBACK_INDEX[e.event] for e in batch]),
            np.array([e.dwell_ratio for e in batch]),
            gaps,
            np.array([e.ts for e in batch]),
        )
        h = np.stack([s.h for s in batch_states])
        h_next, q = step_fn(step_inputs(track_in, context), h)
        if q_all is None:
            q_all = np.zeros((n, q.shape[1]), dtype=np.float32)
        q_all[fresh] = q
        applied[fresh] = True
        for row, (event, state, gap) in enumerate(zip(batch, batch_states, gaps, strict=True)):
            _remember(state, event, h_next[row], gap, history_length)
    if q_all is None:
        q_all = np.zeros((n, 0), dtype=np.float32)
    return q_all, applied


def _remember(
    state: ListenerState, event: ListenEvent, h: np.ndarray, gap: float, keep: int
) -> None:
    """Fold one applied event into the state: hidden state, offsets, history, dislikes, skips.

    A like or a complete of a skipped track forgives the skip.
    """
    state.h = np.asarray(h, dtype=np.float32)
    state.last_offset = event.offset
    state.last_ts = event.ts
    state.events += 1
    new_session = np.isnan(gap) or gap > SESSION_GAP_S
    state.session_len = 1 if new_session else min(state.session_len + 1, keep)
    rows = aligned_rows(state.recent_rows, len(state.recent))
    state.recent = [*state.recent, event.track_id][-keep:]
    state.recent_rows = np.append(rows, UNRESOLVED)[-len(state.recent) :]
    state.recent_artists = [*state.recent_artists, event.artist_id][-keep:]
    track = event.track_id
    if event.event == "dislike" and track not in state.disliked:
        state.disliked = [*state.disliked, track][-max(keep, DISLIKES_KEPT) :]
    elif event.event == "skip" and track not in state.skipped:
        state.skipped = [*state.skipped, track][-keep:]
    elif event.event in ("like", "complete") and track in state.skipped:
        state.skipped = [t for t in state.skipped if t != track]
