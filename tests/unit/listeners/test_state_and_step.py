"""Listener state bytes and the ordered, batched GRU steps (with a real ONNX model)."""

from __future__ import annotations

import numpy as np

from radio_engine.listeners.state import ListenerState
from radio_engine.listeners.step import ListenEvent, apply_events, order_steps
from radio_engine.model.runtime import ServingModel


def test_state_bytes_round_trip_and_stay_small() -> None:
    state = ListenerState(
        h=np.arange(128, dtype=np.float32),
        version=7,
        last_offset=12345,
        last_ts=1.5e9,
        events=40,
        pool_epoch=3,
        session_len=4,
        recent=["t1", "t2"],
        recent_artists=["a", ""],
        disliked=["t9"],
        queue=["q1", "q2"],
        pool=["p1"],
    )
    raw = state.to_bytes()
    back = ListenerState.from_bytes(raw)
    assert np.array_equal(back.h, state.h)
    assert (
        back.version,
        back.last_offset,
        back.events,
        back.recent,
        back.queue,
        back.disliked,
    ) == (7, 12345, 40, ["t1", "t2"], ["q1", "q2"], ["t9"])
    assert back.session_artists() == ["a", ""][-4:]
    assert len(raw) < 700


def test_order_steps_groups_kth_events() -> None:
    steps = order_steps(["a", "b", "a", "c", "a", "b"])
    assert [s.tolist() for s in steps] == [[0, 1, 3], [2, 5], [4]]


def test_apply_events_matches_stepping_one_by_one(tiny_model: ServingModel) -> None:
    track_in = {f"t{i}": tiny_model.tracks.track_in[i] for i in range(40)}

    def lookup(ids: list[str], _artists: list[str]) -> np.ndarray:
        return np.stack([track_in[t] for t in ids])

    events = [
        ListenEvent(lid, f"t{i}", "play", 1e9 + 60 * i, offset=i) for i, lid in enumerate("abacab")
    ]
    batched = {lid: ListenerState.new(tiny_model.h0) for lid in "abc"}
    q, applied = apply_events(events, batched, tiny_model.step, lookup)
    assert applied.all() and q.shape == (6, tiny_model.dims.query)
    sequential = {lid: ListenerState.new(tiny_model.h0) for lid in "abc"}
    for e in events:
        apply_events([e], sequential, tiny_model.step, lookup)
    for lid in "abc":
        assert np.allclose(batched[lid].h, sequential[lid].h, atol=1e-5)
        assert batched[lid].recent == sequential[lid].recent
    # replaying the same offsets is a no-op
    before = batched["a"].h.copy()
    _, applied = apply_events(events, batched, tiny_model.step, lookup)
    assert not applied.any() and np.array_equal(before, batched["a"].h)


def test_a_long_gap_starts_a_new_session_but_keeps_the_state(tiny_model: ServingModel) -> None:
    lookup = lambda ids, _a: np.stack([tiny_model.tracks.track_in[int(t[1:])] for t in ids])  # noqa: E731
    state = {"u": ListenerState.new(tiny_model.h0)}
    apply_events(
        [
            ListenEvent("u", "t1", "play", 1e9, offset=0),
            ListenEvent("u", "t2", "play", 1e9 + 200, offset=1),
        ],
        state,
        tiny_model.step,
        lookup,
    )
    assert state["u"].session_len == 2
    h_before = state["u"].h.copy()
    apply_events(
        [ListenEvent("u", "t3", "play", 1e9 + 86400, offset=2)], state, tiny_model.step, lookup
    )
    assert state["u"].session_len == 1 and state["u"].events == 3
    assert not np.allclose(state["u"].h, tiny_model.h0)  # not reset to h0 ...
    assert not np.allclose(state["u"].h, h_before)  # ... but moved by the new event
