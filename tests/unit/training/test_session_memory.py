"""The session indicators the GRU trains beside: what each slot remembers and when it forgets."""

from __future__ import annotations

import torch

from radio_engine.training.session_memory import INDICATORS, SessionMemory


def _observe(memory: SessionMemory, tracks: list[int], artists: list[int], new: list[bool]) -> None:
    memory.observe(torch.tensor(tracks), torch.tensor(artists), torch.tensor(new))


def test_indicators_follow_each_slots_session() -> None:
    memory = SessionMemory(slots=2, length=4)
    _observe(memory, [5, 7], [1, 2], [True, True])
    _observe(memory, [6, 8], [3, 2], [False, False])
    candidates = torch.tensor([5, 6, 8, 9])
    candidate_artists = torch.tensor([1, 3, 2, 1])
    got = memory.indicators(candidates, candidate_artists)
    assert INDICATORS == ("last_artist", "session_artist", "in_session")
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
    got = memory.indicators(torch.tensor([5, 7]), torch.tensor([1, 2]))
    assert got[0].sum().item() == 0  # slot 0 started over with track 6 (artist 3)
    assert got[1, 1].tolist() == [0, 1, 1]  # slot 1 still remembers track 7 (artist 2)


def test_unknown_tracks_and_artists_never_match() -> None:
    memory = SessionMemory(slots=1, length=3)
    _observe(memory, [0], [0], [True])
    got = memory.indicators(torch.tensor([0, 4]), torch.tensor([0, 0]))
    assert got.sum().item() == 0


def test_memory_keeps_the_last_length_events() -> None:
    memory = SessionMemory(slots=1, length=2)
    for track in (1, 2, 3):
        _observe(memory, [track], [track], [track == 1])
    got = memory.indicators(torch.tensor([1, 2, 3]), torch.tensor([9, 9, 9]))
    assert got[0, :, 2].tolist() == [0, 1, 1]
