"""Listener state: byte round trip, the size of a realistic state, old records, bad records."""

from __future__ import annotations

import struct

import numpy as np
import orjson
import pytest

from radio_engine.listeners.state import ListenerState


def realistic_state() -> ListenerState:
    """A listener in full flow: H=128, 50 recent 30Music-style ids."""
    rng = np.random.default_rng(1)
    recent = [str(1_800_000 + i) for i in range(50)]
    return ListenerState(
        h=rng.normal(size=128).astype(np.float32),
        version=912,
        last_offset=2**40 + 5,
        last_ts=1_397_982_525.25,
        events=1234,
        session_len=12,
        recent=recent,
        recent_artists=[str(228_000 + i % 7) if i % 5 else "" for i in range(50)],
        disliked=["1818271", "42"],
        skipped=["77"],
        queue=[str(1_900_000 + i) for i in range(10)],
        recent_kinds=bytes([0, 2, 1, 3, 4] * 10),
        artist_marks=[("228001", 1, 1_397_980_000.5), ("228003", 4, 1_397_981_000.0)],
        queue_scores=[1.5 - i / 8 for i in range(10)],
    )


def assert_same(a: ListenerState, b: ListenerState) -> None:
    assert np.array_equal(a.h, b.h) and a.h.dtype == np.float32
    for name in (
        "version",
        "last_offset",
        "last_ts",
        "events",
        "session_len",
        "recent",
        "recent_artists",
        "disliked",
        "skipped",
        "queue",
        "recent_kinds",
        "artist_marks",
        "queue_scores",
    ):
        assert getattr(a, name) == getattr(b, name), name


def test_a_full_state_round_trips_and_its_size_is_known() -> None:
    state = realistic_state()
    raw = state.to_bytes()
    assert_same(ListenerState.from_bytes(raw), state)
    marks = [m[0] for m in state.artist_marks]
    lists = (state.recent, state.recent_artists, state.disliked, state.skipped, state.queue, marks)
    text = "\0".join(i for ids in lists for i in ids).encode()
    # 30-byte header + float32 h + 6 list lengths + a feedback byte per recent track + 9 bytes
    # per artist mark + a float32 score per queue track + ids: no catalog rows (they are caches)
    assert len(raw) == 30 + 4 * 128 + 12 + 50 + 2 * 9 + 4 * 10 + len(text)
    assert len(raw) < 2048  # the changelog budget per listener


def test_event_id_hashes_round_trip_and_cost_eight_bytes_each() -> None:
    state = realistic_state()
    without = len(state.to_bytes())
    state.event_ids = np.array([2**64 - 1, 0, 12345], dtype=np.uint64)
    raw = state.to_bytes()
    assert len(raw) == without + 2 + 3 * 8
    back = ListenerState.from_bytes(raw)
    assert back.event_ids.tolist() == [2**64 - 1, 0, 12345] and back.recent == state.recent
    with pytest.raises(ValueError, match="truncated"):
        ListenerState.from_bytes(raw[: 30 + 512 + 12 + 2 + 8])


def test_a_new_listener_is_small_and_owns_its_h() -> None:
    h0 = np.linspace(-1, 1, 128, dtype=np.float32)
    state = ListenerState.new(h0)
    state.h[0] = 99.0
    assert h0[0] == -1.0  # the model's h0 is never written through
    raw = state.to_bytes()
    assert len(raw) == 30 + 512 + 12
    back = ListenerState.from_bytes(raw)
    assert back.recent == [] and back.queue == []
    assert back.last_offset == -1 and back.version == 0


def test_ids_holding_nul_or_empty_strings_survive() -> None:
    state = ListenerState(
        h=np.ones(4, np.float32),
        recent=["a\0b", ""],
        recent_artists=["", ""],
        queue=["ü-ñ", "x"],
    )
    back = ListenerState.from_bytes(state.to_bytes())
    assert back.recent == ["a\0b", ""] and back.recent_artists == ["", ""]
    assert back.queue == ["ü-ñ", "x"]
    only_empty = ListenerState(h=np.ones(2, np.float32), recent_artists=[""])
    assert ListenerState.from_bytes(only_empty.to_bytes()).recent_artists == [""]


def test_a_record_of_the_first_format_still_reads() -> None:
    h = np.arange(8, dtype=np.float32)
    lists = orjson.dumps([["t1", "t2"], ["a", ""], ["t9"], ["q1"], ["p1", "p2"]])
    old = struct.pack("<BHIqdIII", 0xA1, 8, 5, 321, 1.5e9, 7, 3, 2) + h.tobytes() + lists
    state = ListenerState.from_bytes(old)
    assert np.array_equal(state.h, h) and state.version == 5 and state.last_offset == 321
    assert state.recent == ["t1", "t2"] and state.queue == ["q1"] and state.disliked == ["t9"]


def test_a_record_of_the_format_with_pools_still_reads_without_its_pool() -> None:
    """The previous format also held the pool and the recent tracks' catalog rows."""
    h = np.arange(4, dtype=np.float32)
    header = struct.pack("<BBHIqdIIIHI", 0xA2, 0, 4, 9, 77, 1.5e9, 12, 0xBEEF, 3, 2, 3)
    pool = np.array([5, 6, 7], dtype="<i4").tobytes()
    counts = struct.pack("<HHHHH", 2, 2, 1, 1, 1)
    rows = np.array([1, -2], dtype="<i4").tobytes()
    ids = "\0".join(["t1", "t2", "a1", "a2", "t9", "t5", "q1"]).encode()
    state = ListenerState.from_bytes(header + h.tobytes() + pool + counts + rows + ids)
    assert np.array_equal(state.h, h) and (state.version, state.last_offset) == (9, 77)
    assert (state.events, state.session_len) == (12, 2)
    assert state.recent == ["t1", "t2"] and state.recent_artists == ["a1", "a2"]
    assert (state.disliked, state.skipped, state.queue) == (["t9"], ["t5"], ["q1"])


def test_missing_feedback_bytes_read_as_plays() -> None:
    state = ListenerState(h=np.ones(2, np.float32), recent=["a", "b", "c"], recent_kinds=b"\x01")
    assert ListenerState.from_bytes(state.to_bytes()).recent_kinds == b"\x00\x00\x01"


def test_a_record_of_the_format_without_feedback_still_reads_as_plays() -> None:
    """The previous format (0xA3) had event-id hashes but no feedback kinds or artist marks."""
    h = np.arange(4, dtype=np.float32)
    header = struct.pack("<BBHIqdIH", 0xA3, 0x02, 4, 9, 77, 1.5e9, 12, 2)
    counts = struct.pack("<HHHHH", 2, 2, 1, 1, 1)
    hashes = struct.pack("<H", 1) + np.array([42], dtype="<u8").tobytes()
    ids = "\0".join(["t1", "t2", "a1", "a2", "t9", "t5", "q1"]).encode()
    state = ListenerState.from_bytes(header + h.tobytes() + counts + hashes + ids)
    assert np.array_equal(state.h, h) and (state.version, state.last_offset) == (9, 77)
    assert state.recent == ["t1", "t2"] and state.queue == ["q1"]
    assert state.event_ids.tolist() == [42] and state.artist_marks == []
    again = ListenerState.from_bytes(state.to_bytes())
    assert again.recent_kinds == b"\x00\x00" and again.recent == ["t1", "t2"]


@pytest.mark.parametrize("raw", [b"", b"\x00" * 60, b"{}"])
def test_bytes_that_are_not_a_state_are_refused(raw: bytes) -> None:
    with pytest.raises(ValueError, match="not a listener state"):
        ListenerState.from_bytes(raw)


def test_a_truncated_state_is_refused() -> None:
    raw = realistic_state().to_bytes()
    with pytest.raises(ValueError, match="truncated"):
        ListenerState.from_bytes(raw[:200])
    with pytest.raises(ValueError, match="do not match"):
        ListenerState.from_bytes(raw[:-200])
