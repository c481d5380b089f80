"""Ordered, batched GRU steps: order inside a batch, duplicates, inputs, history bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest

from radio_engine.listeners.events import ListenEvent, ListenEvents
from radio_engine.listeners.state import ListenerState
from radio_engine.listeners.step import StepFn, TrackInFn, apply_events, order_steps
from radio_engine.model.inputs import CONTEXT_DIM, CONTEXT_NAMES
from radio_engine.model.runtime import ServingModel

TRACK_DIM, HIDDEN = 6, 8


class NumpyGRU:
    """A real GRU cell + linear head in numpy (random weights), recording every x it sees."""

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        d = TRACK_DIM + CONTEXT_DIM
        self.w = rng.normal(scale=0.5, size=(3, d, HIDDEN)).astype(np.float32)
        self.u = rng.normal(scale=0.5, size=(3, HIDDEN, HIDDEN)).astype(np.float32)
        self.head = rng.normal(size=(HIDDEN, 4)).astype(np.float32)
        self.seen: list[np.ndarray] = []

    def __call__(self, x: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.seen.append(x.copy())
        sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
        z = sig(x @ self.w[0] + h @ self.u[0])
        r = sig(x @ self.w[1] + h @ self.u[1])
        n = np.tanh(x @ self.w[2] + (r * h) @ self.u[2])
        h_next = ((1 - z) * n + z * h).astype(np.float32)
        return h_next, (h_next @ self.head).astype(np.float32)


def track_vectors(ids: list[str], _artists: list[str]) -> np.ndarray:
    """A distinct input vector per track id (t0, t1, ...)."""
    return np.stack([np.sin(np.arange(TRACK_DIM) * (1 + int(t[1:]))) for t in ids]).astype(
        np.float32
    )


def fresh(listeners: str) -> dict[str, ListenerState]:
    return {lid: ListenerState.new(np.zeros(HIDDEN, np.float32)) for lid in listeners}


def event(lid: str, track: int, offset: int, kind: str = "play", **kw: float) -> ListenEvent:
    return ListenEvent(lid, f"t{track}", kind, 1e9 + 60 * offset, offset=offset, **kw)


def apply(
    events: list[ListenEvent],
    states: dict[str, ListenerState],
    step: StepFn,
    track_in_for: TrackInFn,
    history_length: int = 50,
    id_window: int = 32,
) -> tuple[np.ndarray, np.ndarray]:
    """apply_events over a list of events (as the columns the pipeline builds)."""
    columns = ListenEvents.of(events)
    return apply_events(columns, states, step, track_in_for, history_length, id_window)


def test_order_steps_puts_each_listeners_kth_event_in_step_k() -> None:
    steps = order_steps(["a", "b", "a", "c", "a", "b"])
    assert [s.tolist() for s in steps] == [[0, 1, 3], [2, 5], [4]]
    assert order_steps([]) == []


def test_interleaved_events_are_applied_in_each_listeners_order() -> None:
    # A's three events interleaved with B's: batched == one event at a time
    batch = [
        event("A", 1, 0),
        event("B", 7, 1),
        event("A", 2, 2),
        event("B", 8, 3),
        event("A", 3, 4),
    ]
    gru = NumpyGRU()
    batched = fresh("AB")
    q, applied = apply(batch, batched, gru, track_vectors)
    assert applied.all() and q.shape == (5, 4)
    assert len(gru.seen) == 3 and [len(x) for x in gru.seen] == [2, 2, 1]  # steps k=0,1,2
    one_by_one = fresh("AB")
    q_single = np.concatenate([apply([e], one_by_one, gru, track_vectors)[0] for e in batch])
    for lid in "AB":
        np.testing.assert_allclose(batched[lid].h, one_by_one[lid].h, atol=1e-6)
    np.testing.assert_allclose(q, q_single, atol=1e-6)  # q row i belongs to event i
    assert batched["A"].recent == ["t1", "t2", "t3"] and batched["A"].last_offset == 4
    # the order matters: A's events in another order end elsewhere
    shuffled = fresh("A")
    apply([event("A", 3, 0), event("A", 1, 1), event("A", 2, 2)], shuffled, gru, track_vectors)
    assert not np.allclose(shuffled["A"].h, batched["A"].h, atol=1e-3)


def test_duplicate_offsets_are_not_applied_twice() -> None:
    gru = NumpyGRU(1)
    states = fresh("u")
    first = [event("u", i, i) for i in range(4)]
    apply(first, states, gru, track_vectors)
    h_after_four = states["u"].h.copy()
    # a redelivery overlapping the applied part: offsets 2, 3 are old, 4, 5 are new
    again = [event("u", i, i) for i in range(2, 6)]
    q, applied = apply(again, states, gru, track_vectors)
    assert applied.tolist() == [False, False, True, True]
    assert not q[:2].any()  # rows of duplicates stay zero
    reference = fresh("u")
    apply([event("u", i, i) for i in range(6)], reference, gru, track_vectors)
    np.testing.assert_allclose(states["u"].h, reference["u"].h, atol=1e-6)
    assert states["u"].events == 6 and states["u"].recent == [f"t{i}" for i in range(6)]
    assert not np.allclose(h_after_four, states["u"].h)
    # the same batch once more changes nothing at all
    before = states["u"].to_bytes()
    _, applied = apply(again, states, gru, track_vectors)
    assert not applied.any() and states["u"].to_bytes() == before


def test_a_retried_event_id_is_applied_once_within_the_window() -> None:
    gru = NumpyGRU(2)
    states = fresh("uv")
    first = ListenEvent("u", "t1", "play", 1e9, event_id="e1", offset=0)
    retry_now = ListenEvent("u", "t1", "play", 1e9, event_id="e1", offset=1)
    other = ListenEvent("v", "t2", "play", 1e9, event_id="e1", offset=2)  # ids are per listener
    _, applied = apply([first, retry_now, other], states, gru, track_vectors, id_window=2)
    assert applied.tolist() == [True, False, True]
    assert states["u"].events == 1 and states["u"].last_offset == 0
    retry_later = ListenEvent("u", "t1", "play", 1e9, event_id="e1", offset=3)
    _, applied = apply([retry_later], states, gru, track_vectors, id_window=2)
    assert not applied.any() and states["u"].events == 1
    # two more ids push e1 out of a window of 2: the same id is then a new event
    more = [
        ListenEvent("u", f"t{i}", "play", 1e9 + i, event_id=f"e{i}", offset=3 + i) for i in (2, 3)
    ]
    apply(more, states, gru, track_vectors, id_window=2)
    assert states["u"].event_ids.size == 2
    _, applied = apply(
        [ListenEvent("u", "t1", "play", 1e9 + 9, event_id="e1", offset=9)],
        states,
        gru,
        track_vectors,
        id_window=2,
    )
    assert applied.all() and states["u"].events == 4
    # events without an id are never taken for retries
    _, applied = apply([event("u", 1, 10), event("u", 1, 11)], states, gru, track_vectors)
    assert applied.all()


def test_step_inputs_carry_feedback_dwell_and_the_gap_since_the_last_event() -> None:
    gru = NumpyGRU()
    states = fresh("u")
    apply([ListenEvent("u", "t1", "play", 1000.0, offset=0)], states, gru, track_vectors)
    apply(
        [ListenEvent("u", "t2", "skip", 1600.0, dwell_ratio=0.25, offset=1)],
        states,
        gru,
        track_vectors,
    )
    col = {name: TRACK_DIM + i for i, name in enumerate(CONTEXT_NAMES)}
    first, second = gru.seen[0][0], gru.seen[1][0]
    np.testing.assert_allclose(first[:TRACK_DIM], track_vectors(["t1"], [""])[0])
    assert first[col["new_session"]] == 1.0 and first[col["log_gap"]] == 0.0  # no previous
    assert first[col["feedback_play"]] == 1.0 and first[col["dwell_known"]] == 0.0
    assert second[col["feedback_skip"]] == 1.0 and second[col["feedback_play"]] == 0.0
    assert second[col["dwell_ratio"]] == pytest.approx(0.25)
    assert second[col["log_gap"]] == pytest.approx(np.log1p(600.0) / 10.0)
    assert second[col["new_session"]] == 0.0


def test_feedback_bookkeeping_dislikes_skips_and_history_length() -> None:
    gru = NumpyGRU()
    states = fresh("u")
    events = [
        event("u", 1, 0, "skip"),
        event("u", 2, 1, "dislike"),
        event("u", 3, 2, "skip"),
        event("u", 1, 3, "like"),  # a like forgives t1's skip
        event("u", 4, 4),
    ]
    apply(events, states, gru, track_vectors, history_length=3)
    s = states["u"]
    assert s.recent == ["t3", "t1", "t4"]  # the last 3
    assert s.disliked == ["t2"] and s.skipped == ["t3"]
    assert s.session_len == 3 and s.events == 5


def test_a_real_onnx_model_steps_in_order(tiny_model: ServingModel) -> None:
    """The served ONNX step, fed by the catalog's vectors: batched == sequential."""
    table = {t: i for i, t in enumerate(tiny_model.tracks.track_ids)}

    def lookup(ids: list[str], _artists: list[str]) -> np.ndarray:
        return tiny_model.tracks.track_in[[table[t] for t in ids]]

    events = [
        ListenEvent(lid, f"t{i}", kind, 1e9 + 60 * i, offset=i)
        for i, (lid, kind) in enumerate(
            [
                ("a", "play"),
                ("b", "skip"),
                ("a", "like"),
                ("c", "play"),
                ("a", "complete"),
                ("b", "play"),
            ]
        )
    ]
    batched = {lid: ListenerState.new(tiny_model.h0) for lid in "abc"}
    q, applied = apply(events, batched, tiny_model.step, lookup)
    assert applied.all() and q.shape == (6, tiny_model.dims.query)
    sequential = {lid: ListenerState.new(tiny_model.h0) for lid in "abc"}
    for e in events:
        apply([e], sequential, tiny_model.step, lookup)
    for lid in "abc":
        np.testing.assert_allclose(batched[lid].h, sequential[lid].h, atol=1e-5)
    assert not np.allclose(batched["a"].h, tiny_model.h0)


def test_a_long_gap_starts_a_new_session_but_keeps_the_hidden_state() -> None:
    gru = NumpyGRU()
    states = fresh("u")
    apply([event("u", 1, 0), event("u", 2, 1)], states, gru, track_vectors)
    assert states["u"].session_len == 2 and states["u"].session_tracks() == ["t1", "t2"]
    h_before = states["u"].h.copy()
    day_later = ListenEvent("u", "t3", "play", 1e9 + 86_400, offset=2)
    apply([day_later], states, gru, track_vectors)
    assert states["u"].session_len == 1 and states["u"].session_tracks() == ["t3"]
    assert states["u"].recent == ["t1", "t2", "t3"]  # history is kept across sessions
    assert not np.allclose(states["u"].h, h_before) and np.abs(states["u"].h).sum() > 0


def test_a_long_gap_inside_one_batch_starts_the_session_at_that_event() -> None:
    gru = NumpyGRU()
    states = fresh("uv")
    day = 86_400.0
    batch = [
        ListenEvent("u", "t1", "play", 1e9, offset=0),
        ListenEvent("v", "t5", "play", 1e9, offset=1),
        ListenEvent("u", "t2", "play", 1e9 + 60, offset=2),
        ListenEvent("u", "t3", "play", 1e9 + day, offset=3),
        ListenEvent("u", "t4", "play", 1e9 + day + 60, offset=4),
    ]
    apply(batch, states, gru, track_vectors)
    assert states["u"].session_tracks() == ["t3", "t4"] and states["v"].session_len == 1
    assert states["u"].last_ts == 1e9 + day + 60 and states["u"].events == 4
    one_by_one = fresh("uv")
    for e in batch:
        apply([e], one_by_one, gru, track_vectors)
    assert one_by_one["u"].to_bytes() == states["u"].to_bytes()


def test_dislikes_outlive_the_play_history() -> None:
    gru = NumpyGRU()
    states = fresh("u")
    events = [event("u", i, i, "dislike") for i in range(6)] + [event("u", 9, 6)]
    apply(events, states, gru, track_vectors, history_length=2)
    assert states["u"].recent == ["t5", "t9"]
    assert states["u"].disliked == [f"t{i}" for i in range(6)]  # never forgotten this soon
