"""Encoding events for evaluation: candidate order, session grouping, next-track pairs."""

from __future__ import annotations

import numpy as np

from radio_engine.training.data import Events
from radio_engine.training.pairs import EvalCatalog, Pairs, SessionLog, recent_rows


def ev(rows: list[tuple[int, str, int, str, str, int]]) -> Events:
    """rows of (fold, user, session, track, artist, ts) in file order."""
    cols = list(zip(*rows, strict=True))
    return Events(*(np.array(c) for c in cols), event=np.array(["play"] * len(rows)))


# file order: session 2 comes first; session 1 has two events with the same timestamp
EVENTS = ev(
    [
        (0, "u2", 2, "t9", "A9", 500),
        (0, "u2", 2, "t1", "A1", 560),
        (0, "u1", 1, "t3", "A3", 100),
        (0, "u1", 1, "t2", "A2", 200),
        (0, "u1", 1, "t1", "A1", 200),
        (0, "u1", 1, "t7", "A7", 300),
    ]
)


#: "training" for the catalog: session 2 only (t9 and t1)
TRAIN = ev([(0, "u2", 2, "t9", "A9", 500), (0, "u2", 2, "t1", "A1", 560)])


def test_catalog_blocks_table_then_train_then_later_tracks():
    cat = EvalCatalog.build(np.array(["t2", "t1"]), np.array(["A2", ""]), TRAIN, EVENTS)
    assert cat.track_ids.tolist() == ["t2", "t1", "t9", "t3", "t7"]
    assert (cat.n_table, cat.n_warm, cat.size) == (2, 3, 5)
    # the table's unknown artist of t1 is filled from the events
    assert [cat.artist_names[c] for c in cat.artist_codes] == ["A2", "A1", "A9", "A3", "A7"]
    assert cat.rows_of(np.array(["t9", "nope"])).tolist() == [2, -1]
    assert cat.artist_codes_of(np.array(["A1", "B"])).tolist() == [cat.artist_codes[1], -1]


def test_sessions_are_in_time_order_and_equal_times_keep_file_order():
    cat = EvalCatalog.build(np.array(["t2", "t1"]), np.array(["A2", "A1"]), EVENTS)
    log = SessionLog.from_events(EVENTS, cat)
    assert log.n_sessions == 2
    assert cat.track_ids[log.rows].tolist() == ["t3", "t2", "t1", "t7", "t9", "t1"]
    assert log.event_index.tolist() == [2, 3, 4, 5, 0, 1]
    assert log.starts.tolist() == [0, 4, 6]


def test_pairs_at_every_position_after_the_first():
    cat = EvalCatalog.build(np.array(["t2", "t1"]), np.array(["A2", "A1"]), TRAIN, EVENTS)
    pairs = Pairs.from_log(SessionLog.from_events(EVENTS, cat))
    assert pairs.size == 4
    assert cat.track_ids[pairs.target_rows].tolist() == ["t2", "t1", "t7", "t1"]
    assert pairs.cold.tolist() == [False, False, True, False]  # t7: not in table or training
    assert pairs.prev_event.tolist() == [2, 3, 4, 0]
    assert pairs.target_event.tolist() == [3, 4, 5, 1]
    pre = pairs.prefixes(np.array([2, 3]))
    assert pre.offsets.tolist() == [0, 3, 4]
    assert cat.track_ids[pre.rows].tolist() == ["t3", "t2", "t1", "t9"]
    assert cat.track_ids[pre.last_rows].tolist() == ["t1", "t9"]
    assert pre.positions.tolist() == [1, 2, 3, 1]
    assert pre.users.tolist() == ["u1", "u2"]


def test_a_prefix_follows_accepted_events_and_carries_the_last_one_into_its_session():
    """Session indicators of a prefix (model.session_indicators): skips and dislikes never count;
    a prefix without an accepted event takes the listener's last accepted one from before."""
    train = ev([(0, "u1", 1, "t1", "A1", 100), (0, "u1", 1, "t2", "A2", 200)])
    train = Events(**{**vars(train), "event": np.array(["play", "skip"])})
    test = ev([(0, "u1", 2, "t3", "A3", 5000), (0, "u1", 2, "t4", "A4", 5100)])
    test = Events(**{**vars(test), "event": np.array(["skip", "like"])})
    test = Events.concat([test, ev([(0, "u1", 2, "t5", "A5", 5200)])])
    cat = EvalCatalog.build(np.array(["t1", "t2"]), np.array(["A1", "A2"]), train, test)
    pairs = Pairs.from_log(SessionLog.from_events(test, cat), SessionLog.from_events(train, cat))
    assert cat.track_ids[pairs.target_rows].tolist() == ["t4", "t5"]
    context = pairs.prefixes(np.arange(2)).session_context()
    # after the skipped t3: t2 was skipped too, so the last accepted track is t1, from training
    assert cat.track_ids[context.last_track].tolist() == ["t1", "t4"]
    assert cat.artist_names[context.last_artist].tolist() == ["A1", "A4"]
    # the session's accepted tracks: none, then t4 (the skipped t3 never)
    assert [cat.track_ids[r[r >= 0]].tolist() for r in context.tracks] == [[], ["t4"]]
    # without the training log nothing comes before the session
    alone = Pairs.from_log(SessionLog.from_events(test, cat)).prefixes(np.arange(2))
    assert alone.session_context().last_track.tolist()[0] == -1


def test_recent_rows_are_the_listeners_last_events_before_each_target():
    later = ev(
        [
            (0, "u1", 3, "t9", "A9", 900),
            (0, "u1", 3, "t3", "A3", 960),
            (0, "u2", 4, "t7", "A7", 950),
            (0, "u2", 4, "t2", "A2", 990),
        ]
    )
    cat = EvalCatalog.build(np.zeros(0, str), np.zeros(0, str), EVENTS, later)
    before, log = SessionLog.from_events(EVENTS, cat), SessionLog.from_events(later, cat)
    pairs = Pairs.from_log(log, before)
    row = {t: int(cat.rows_of(np.array([t]))[0]) for t in ("t1", "t2", "t3", "t7", "t9")}
    assert [cat.track_ids[r] for r in pairs.target_rows] == ["t3", "t2"]
    recent = recent_rows(pairs, 5, before)
    # u1: t3 t2 t1 t7 (time order, equal times in file order), then t9 of the test session
    assert recent[0].tolist() == [row["t3"], row["t2"], row["t1"], row["t7"], row["t9"]]
    # u2: padding, then t9 t1 from training and t7: another listener's events never count
    assert recent[1].tolist() == [-1, -1, row["t9"], row["t1"], row["t7"]]
    assert recent_rows(pairs, 2, before).tolist() == [
        [row["t7"], row["t9"]],
        [row["t1"], row["t7"]],
    ]
