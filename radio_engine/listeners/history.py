"""Fold a batch's applied events into each listener's state: once per listener, not per event.

Per listener: the new hidden state, offsets and counts, the recent tracks and artists (one list
rebuild for all its events) with their feedback, the current session's length, the hashes of
the last event_ids applied (a player's retry of one of them is a duplicate), and the feedback
lists: a dislike is kept for good (at least DISLIKES_KEPT of them), a skip until a like or a
complete of the same track forgives it; what an event says about its artist goes to the
artist marks (listeners/feedback.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from radio_engine.listeners.events import ListenEvents
from radio_engine.listeners.feedback import mark_artist
from radio_engine.listeners.state import ListenerState
from radio_engine.model.inputs import FEEDBACK_INDEX, SESSION_GAP_S

#: dislikes remembered per listener (at least; history_length when larger): a dislike is for good
DISLIKES_KEPT = 500
#: events that change the dislike / skip lists (a play changes neither)
_FEEDBACK_LISTS = frozenset({"dislike", "skip", "like", "complete"})


def event_id_hash(event_id: str) -> int:
    """A stable 64-bit hash of a player's event_id (the same in every process)."""
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "little")


def retried(
    events: ListenEvents, candidates: np.ndarray, slots: np.ndarray, states: list[ListenerState]
) -> tuple[np.ndarray, dict[int, int]]:
    """Which `candidates` (event indices, in order) repeat an event_id their listener already
    applied (kept in its state) or that an earlier event of this batch carries: a retry. Also
    returns each candidate's event_id hash by event index (for `fold_events`)."""
    out = np.zeros(candidates.size, dtype=bool)
    hashes: dict[int, int] = {}
    seen: dict[int, set[int]] = {}
    ids = events.event_ids
    for j, i in enumerate(candidates.tolist()):
        if not ids[i]:
            continue
        slot = int(slots[i])
        known = seen.get(slot)
        if known is None:
            known = seen[slot] = set(states[slot].event_ids.tolist())
        key = hashes[i] = event_id_hash(ids[i])
        if key in known:
            out[j] = True
        else:
            known.add(key)
    return out, hashes


@dataclass(frozen=True)
class Fold:
    """A batch's applied events as the fold needs them: event indices in arrival order, each
    one's listener slot, the grouping by listener (step.group_by_listener), the gaps, and the
    event_id hashes `retried` computed (by event index)."""

    applied: np.ndarray
    slots: np.ndarray
    groups: tuple[np.ndarray, np.ndarray]
    gaps: np.ndarray
    id_hashes: dict[int, int]


def fold_events(
    events: ListenEvents,
    fold: Fold,
    states: list[ListenerState],
    h: np.ndarray,
    keep: int,
    id_window: int = 32,
) -> None:
    """Update `states[slot]` with its applied events (in order) and its new h row; the last
    `id_window` event_ids applied are kept as hashes."""
    by_slot, group_starts = fold.groups
    starts = group_starts.tolist()
    ends = [*starts[1:], int(by_slot.size)]
    new_session = (np.isnan(fold.gaps) | (fold.gaps > SESSION_GAP_S))[by_slot].tolist()
    picked = fold.applied[by_slot].tolist()
    slots = fold.slots[by_slot][group_starts].tolist()
    tracks, artists, kinds, ids = (
        events.track_ids,
        events.artist_ids,
        events.kinds,
        events.event_ids,
    )
    hashes = fold.id_hashes
    for slot, lo, hi in zip(slots, starts, ends, strict=True):
        state = states[slot]
        mine = picked[lo:hi]
        last = mine[-1]
        state.h = h[slot].copy()
        state.last_offset = events.offsets[last]
        state.last_ts = events.ts[last]
        state.events += len(mine)
        state.session_len = _session_len(state.session_len, new_session[lo:hi], keep)
        state.recent = (state.recent + [tracks[i] for i in mine])[-keep:]
        state.recent_artists = (state.recent_artists + [artists[i] for i in mine])[-keep:]
        new_kinds = bytes(FEEDBACK_INDEX[kinds[i]] for i in mine)
        state.recent_kinds = (state.recent_kinds + new_kinds)[-len(state.recent) :]
        for i in mine:
            if kinds[i] in _FEEDBACK_LISTS:
                _feedback(state, kinds[i], tracks[i], keep)
                mark_artist(state, kinds[i], artists[i], events.ts[i])
        if id_window <= 0:
            if any(ids[i] for i in mine):  # no window: nothing is kept
                state.event_ids = state.event_ids[:0]
            continue
        new_ids = [hashes[i] for i in mine if i in hashes]
        if new_ids:
            kept = np.concatenate([state.event_ids, np.asarray(new_ids, dtype=np.uint64)])
            state.event_ids = kept[-id_window:]


def _session_len(before: int, new_session: list[bool], keep: int) -> int:
    """Length of the current session after events whose new-session flags are given."""
    if True in new_session:
        last_start = len(new_session) - 1 - new_session[::-1].index(True)
        return min(len(new_session) - last_start, keep)
    return min(before + len(new_session), keep)


def _feedback(state: ListenerState, kind: str, track: str, keep: int) -> None:
    """One dislike, skip, like or complete into the feedback lists."""
    if kind == "dislike" and track not in state.disliked:
        state.disliked = [*state.disliked, track][-max(keep, DISLIKES_KEPT) :]
    elif kind == "skip" and track not in state.skipped:
        state.skipped = [*state.skipped, track][-keep:]
    elif kind in ("like", "complete") and track in state.skipped:
        state.skipped = [t for t in state.skipped if t != track]
