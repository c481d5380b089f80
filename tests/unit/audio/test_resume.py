"""Resume points: re-reading the audio topic from one, an empty assembler gives the same tracks
and refusals as the assembler that was killed there, for a crash after any chunk."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from radio_engine.audio.assembly import AudioAssembler
from radio_engine.audio.resume import ResumePoints, resume_offset
from radio_engine.model.runtime import ServingModel
from radio_engine.schemas import BadMessage
from radio_engine.settings import Settings
from tests.unit.audio.test_assembly import assembler, chunk_messages

CLIPS = Settings().data_path / "game-music" / "clips" / "asc-music"


def test_nothing_open_resumes_after_everything_read() -> None:
    assert resume_offset(10, []) == 10
    assert resume_offset(10, [(2, 5), (6, 9)]) == 10  # finished tracks hold nothing back


def test_an_open_track_holds_the_point_at_its_first_chunk() -> None:
    assert resume_offset(10, [(4, None), (7, None)]) == 4


def test_a_finished_track_across_the_point_pulls_it_back_to_its_own_start() -> None:
    # track A: 0..7 finished; track B open since 2; track C: 1..3 reaches A's start? no, C
    # starts after 0, so only A (0..7, across B's 2) pulls the point down to 0
    assert resume_offset(10, [(0, 7), (2, None)]) == 0
    # a chain: open at 6, finished 4..6 across it, finished 1..4 across 4
    assert resume_offset(10, [(6, None), (4, 6), (1, 4), (0, 0)]) == 1


def test_closed_spans_below_the_point_are_forgotten() -> None:
    points = ResumePoints()
    for offset in range(3):
        points.read(0, offset)
    points.open(0, "a", 0)
    points.extend(0, "a", 1)
    points.close(0, "a", 2)
    points.read(0, 3)
    points.open(0, "b", 3)
    assert points.resume_at(0) == 3 and points.tracked(0) == 1  # only b, open
    assert points.resume_at(1) is None  # nothing read there
    points.forget(0)
    assert points.resume_at(0) is None and points.tracked(0) == 0


@pytest.fixture(scope="module")
def stream() -> list[tuple[bytes, bytes]]:
    """Two real clips interleaved with a refused chunk among them, a third after them, and a
    fourth never finished."""
    a, b, c, d = (
        chunk_messages(CLIPS / name, track)
        for name, track in [
            ("frontiers.ogg", "a"),
            ("machine_wars.ogg", "b"),
            ("time_to_strike.ogg", "c"),
            ("frontiers.ogg", "d"),
        ]
    )
    assert len(a) == len(b) == len(c) == 5
    return [
        (b"a", a[0]),
        (b"a", a[1]),
        (b"b", b[0]),
        (b"a", a[2]),
        (b"b", b[1]),
        (b"a", a[3]),
        (b"b", b[2]),
        (b"a", a[4]),  # a finished at offset 7
        (b"b", b[3]),
        (b"b", b"{not json"),  # refused: bad_json
        (b"b", b[4]),  # b finished at offset 10
        *[(b"c", m) for m in c],  # c: 11..15
        (b"d", d[0]),
        (b"d", d[1]),  # d never finishes
    ]


def run(a: AudioAssembler, records: list[tuple[bytes, bytes]], start: int) -> dict[int, Any]:
    """Feed records from offset `start` on; what each offset gave: a track record, a refusal
    reason, or None."""
    out: dict[int, Any] = {}
    for offset, (key, value) in enumerate(records[start:], start):
        try:
            out[offset] = a.accept(key, value, partition=0, offset=offset)
        except BadMessage as exc:
            out[offset] = exc.reason
    return out


def same(x: Any, y: Any) -> bool:
    if isinstance(x, dict) and isinstance(y, dict):
        rest = lambda r: {k: v for k, v in r.items() if k != "embedding"}  # noqa: E731
        return rest(x) == rest(y) and np.allclose(x["embedding"], y["embedding"], atol=1e-6)
    return bool(x == y)


def test_a_crash_after_any_chunk_resumes_with_the_same_tracks_and_nothing_refused_anew(
    tiny_model: ServingModel, stream: list[tuple[bytes, bytes]]
) -> None:
    whole: dict[int, Any] = {}
    points = []  # the resume point after each chunk: where a crash right then restarts
    first = assembler(tiny_model)
    for offset in range(len(stream)):
        whole.update(run(first, stream[: offset + 1], offset))
        points.append(first.resume.resume_at(0))
    assert [o for o, r in whole.items() if isinstance(r, dict)] == [7, 10, 15]
    assert [o for o, r in whole.items() if isinstance(r, str)] == [9]  # only the bad message
    # a and b overlap: nothing can be committed until both are done; then c, then d holds it
    assert points == [0] * 10 + [11] * 5 + [16] * 3
    assert all(point <= crash + 1 for crash, point in enumerate(points))
    for point in sorted(set(points)):
        # a fresh assembler from the resume point gives what the killed one gave and would
        # have given: every track, the same refusals, none new
        again = run(assembler(tiny_model), stream, point)
        assert all(same(again[o], whole[o]) for o in range(point, len(stream))), point


def test_committing_everything_read_would_cut_a_track_in_two(
    tiny_model: ServingModel, stream: list[tuple[bytes, bytes]]
) -> None:
    """The control: re-reading from the crash point itself refuses the cut track's chunks."""
    again = run(assembler(tiny_model), stream, 3)  # a's first three chunks were read before
    assert again[3] == "out_of_order" and again[7] == "out_of_order"
    assert not any(isinstance(r, dict) and r["track_id"] == "a" for r in again.values())


def test_evicted_and_refused_tracks_close_their_spans(tiny_model: ServingModel) -> None:
    a = assembler(tiny_model, max_in_progress=2)
    messages = {t: chunk_messages(CLIPS / "frontiers.ogg", t)[:2] for t in ("t1", "t2", "t3")}
    a.accept(b"t1", messages["t1"][0], partition=0, offset=0)
    a.accept(b"t1", messages["t1"][1], partition=0, offset=1)
    a.accept(b"t2", messages["t2"][0], partition=0, offset=2)
    assert a.resume.resume_at(0) == 0
    a.accept(b"t3", messages["t3"][0], partition=0, offset=3)  # evicts t1 (0..1)
    assert a.evicted == 1 and a.resume.resume_at(0) == 2
    with pytest.raises(BadMessage, match="out_of_order"):
        a.accept(b"t2", messages["t2"][0].replace(b'"seq":0', b'"seq":5'), partition=0, offset=4)
    assert "t2" not in a.in_progress
    # t2 closed at the refused chunk (2..4), which lies across t3's start (3): back to t2's
    assert a.resume.resume_at(0) == 2


def test_forgetting_a_partition_drops_only_its_tracks(tiny_model: ServingModel) -> None:
    a = assembler(tiny_model)
    first = chunk_messages(CLIPS / "frontiers.ogg", "x")[0]
    a.accept(b"x", first, partition=0, offset=5)
    a.accept(b"y", first.replace(b'"track_id":"x"', b'"track_id":"y"'), partition=1, offset=9)
    a.forget(0)
    assert list(a.in_progress) == ["y"]
    assert a.resume.resume_at(0) is None and a.resume.resume_at(1) == 9
