"""The session indicators the GRU trains beside: what each slot remembers and when it forgets."""

from __future__ import annotations

import numpy as np

from radio_engine.model.session_indicators import INDICATORS
from radio_engine.training.session_memory import SessionMemory


def _observe(
    memory: SessionMemory,
    tracks: list[int],
    artists: list[int],
    new: list[bool],
    accepted: list[bool] | None = None,
    new_listener: list[bool] | None = None,
) -> None:
    n = len(tracks)
    memory.observe(
        np.array(tracks),
        np.array(artists),
        np.array([True] * n if accepted is None else accepted),
        np.array(new),
        np.array([False] * n if new_listener is None else new_listener),
    )


def test_indicators_follow_each_slots_session() -> None:
    memory = SessionMemory(slots=2, length=4)
    _observe(memory, [5, 7], [1, 2], [True, True])
    _observe(memory, [6, 8], [3, 2], [False, False])
    got = memory.indicators(np.array([5, 6, 8, 9]), np.array([1, 3, 2, 1]))
    assert INDICATORS == ("last_artist", "session_artist", "in_session")
    assert got.dtype == np.float32 and got.shape == (2, 4, 3)
    # slot 0 heard 5 (artist 1) then 6 (artist 3); slot 1 heard 7 then 8, both artist 2
    assert got[0, :, 0].tolist() == [0, 1, 0, 0]
    assert got[0, :, 1].tolist() == [1, 1, 0, 1]
    assert got[0, :, 2].tolist() == [1, 1, 0, 0]
    assert got[1, :, 0].tolist() == [0, 0, 1, 0]
    assert got[1, :, 1].tolist() == [0, 0, 1, 0]
    assert got[1, :, 2].tolist() == [0, 0, 1, 0]


def test_a_new_session_forgets_only_its_own_slot() -> None:
    memory = SessionMemory(slots=2, length=4)
    _observe(memory, [5, 7], [1, 2], [True, True])
    _observe(memory, [6, 8], [3, 4], [True, False])
    got = memory.indicators(np.array([5, 7]), np.array([1, 2]))
    assert got[0].sum() == 0  # slot 0 started over with track 6 (artist 3)
    assert got[1, 1].tolist() == [0, 1, 1]  # slot 1 still remembers track 7 (artist 2)


def test_unknown_tracks_and_artists_never_match() -> None:
    memory = SessionMemory(slots=1, length=3)
    _observe(memory, [0], [0], [True])
    got = memory.indicators(np.array([0, 4]), np.array([0, 0]))
    assert got.sum() == 0


def test_memory_keeps_the_last_length_events() -> None:
    memory = SessionMemory(slots=1, length=2)
    for track in (1, 2, 3):
        _observe(memory, [track], [track], [track == 1])
    got = memory.indicators(np.array([1, 2, 3]), np.array([9, 9, 9]))
    assert got[0, :, 2].tolist() == [0, 1, 1]


def test_skips_feed_no_indicator_but_the_last_accepted_artist_carries_over() -> None:
    memory = SessionMemory(slots=1, length=8)
    _observe(memory, [1], [1], [True])  # accepted, artist 1
    _observe(memory, [2], [2], [True], accepted=[False])  # a new session, skipped: artist 2
    got = memory.indicators(np.array([1, 2, 3]), np.array([1, 2, 3]))
    # the skipped track is in no session list; the last accepted artist is still artist 1
    assert got[0, :, 0].tolist() == [1, 0, 0]
    assert got[0, :, 1:].sum() == 0


def test_a_new_listener_forgets_everything_even_the_last_artist() -> None:
    memory = SessionMemory(slots=1, length=8)
    _observe(memory, [1], [1], [True])
    _observe(memory, [2], [2], [True], accepted=[False], new_listener=[True])
    assert memory.indicators(np.array([1, 2]), np.array([1, 2])).sum() == 0
