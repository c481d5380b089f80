"""replay: 30Music rows -> listen events, event-time order, and the pacing schedule."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path
from typing import Any

import pytest

from radio_engine import schemas
from radio_engine.player.replay import event_id, read_events, schedule, to_listen_event
from radio_engine.settings import Settings

EVENTS_CSV = Settings.from_env().data_path / "30music" / "events.csv"


def file_rows(n: int | None = None) -> list[dict[str, str]]:
    with open(EVENTS_CSV, newline="") as f:
        return list(itertools.islice(csv.DictReader(f), n))


def test_a_real_row_becomes_a_valid_play_event() -> None:
    row = file_rows(1)[0]  # 0,40265,2464,1818271,228054,1397982525,...
    event = to_listen_event(row)
    assert schemas.validate("listen", event) == {
        "listener_id": "40265",
        "track_id": "1818271",
        "artist_id": "228054",
        "event": "play",
        "ts": 1397982525.0,
    }


def test_every_row_is_a_play_even_when_little_of_the_track_was_derived_as_played() -> None:
    rows = file_rows(5000)
    short = [r for r in rows if float(r["pct_played_derived"]) < 0.5]
    assert short, "the slice should hold rows with pct_played_derived < 0.5"
    for row in short:
        event = to_listen_event(row)
        schemas.validate("listen", event)
        assert event["event"] == "play"
        assert "dwell_ratio" not in event


def test_events_are_in_time_order_and_ties_keep_the_file_order() -> None:
    rows = file_rows()
    events = read_events(EVENTS_CSV)
    assert len(events) == len(rows) == 92648
    ts = [e["ts"] for e in events]
    assert ts == sorted(ts)
    assert ts != [float(r["ts"]) for r in rows]  # the file itself is not in time order
    # every group of equal timestamps comes out in the order the file lists it
    in_file: dict[float, list[tuple[str, str]]] = {}
    for r in rows:
        in_file.setdefault(float(r["ts"]), []).append((r["user_id"], r["track_id"]))
    out: dict[float, list[tuple[str, str]]] = {}
    for e in events:
        out.setdefault(e["ts"], []).append((e["listener_id"], e["track_id"]))
    ties = [t for t, group in in_file.items() if len(group) > 1]
    assert len(ties) > 1000
    assert all(out[t] == in_file[t] for t in ties)


def test_listeners_keeps_the_first_listeners_in_time_and_limit_the_first_events() -> None:
    everything = read_events(EVENTS_CSV)
    first_three: list[str] = []
    for e in everything:
        if e["listener_id"] not in first_three:
            first_three.append(e["listener_id"])
        if len(first_three) == 3:
            break
    three = read_events(EVENTS_CSV, listeners=3)
    assert {e["listener_id"] for e in three} == set(first_three)
    assert three == [e for e in everything if e["listener_id"] in first_three]
    assert read_events(EVENTS_CSV, limit=50, listeners=3) == three[:50]
    assert read_events(EVENTS_CSV, limit=10) == everything[:10]


def test_a_csv_without_the_needed_columns_is_refused_by_name(tmp_path: Path) -> None:
    bad = tmp_path / "events.csv"
    bad.write_text("user,track_id,ts\n1,2,3\n")
    with pytest.raises(ValueError, match="user_id"):
        read_events(bad)


def test_as_fast_as_possible_never_waits() -> None:
    events = read_events(EVENTS_CSV, limit=500)
    assert [d for d, _ in schedule(events, speed=0)] == [0.0] * 500


def test_schedule_divides_gaps_by_the_speed_and_caps_long_ones() -> None:
    everything = read_events(EVENTS_CSV, listeners=50)
    spans: dict[str, list[dict[str, Any]]] = {}
    for e in everything:
        spans.setdefault(e["listener_id"], []).append(e)
    # a real listener who came back after days away
    events = max(spans.values(), key=lambda ev: ev[-1]["ts"] - ev[0]["ts"])
    steps = list(schedule(events, speed=600.0, max_gap_s=2.0))
    assert [e for _, e in steps] == events
    assert steps[0][0] == 0.0
    gaps = [b["ts"] - a["ts"] for a, b in itertools.pairwise(events)]
    delays = [d for d, _ in steps[1:]]
    for gap, delay in zip(gaps, delays, strict=True):
        assert delay == pytest.approx(min(gap / 600.0, 2.0))
    # this listener has both ordinary gaps (a few minutes -> seconds) and squashed ones (days)
    assert any(0 < d < 2.0 for d in delays)
    assert any(g > 86400 for g in gaps)
    assert max(delays) == 2.0


def test_schedule_by_hand() -> None:
    events = [{"ts": t} for t in (100.0, 130.0, 130.0, 3730.0, 3700.0)]
    assert [d for d, _ in schedule(events, speed=10.0, max_gap_s=5.0)] == [0.0, 3.0, 0.0, 5.0, 0.0]


def test_event_ids_are_unique_within_a_replay() -> None:
    events = read_events(EVENTS_CSV, limit=2000)
    ids = [event_id(e, n) for n, e in enumerate(events)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) <= 128 for i in ids)
