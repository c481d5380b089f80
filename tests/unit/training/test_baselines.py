"""Each baseline on a tiny hand-made log whose best next track is known, plus the SR table."""

from __future__ import annotations

import numpy as np
import pytest

from radio_engine.model.transitions import load_transitions, save_transitions
from radio_engine.selector.blend import BlendWeights
from radio_engine.training.baselines import (
    VSKNN,
    ArtistContinuation,
    Blend,
    Markov,
    Popularity,
    SequentialRules,
    SignalTables,
    session_signals,
)
from radio_engine.training.data import Events
from radio_engine.training.pairs import EvalCatalog, Pairs, SessionLog
from radio_engine.training.rules import build_rules, sr_matrix

#: track -> artist of the tiny catalog
ARTIST = {"a": "X", "b": "Y", "c": "Z", "d": "Z", "e": "W", "f": "Z", "x": "V"}


def events(sessions: list[list[str]], user: str = "u1", first_session: int = 0) -> Events:
    """One listener's sessions, a minute between tracks, an hour between sessions."""
    rows = [
        (first_session + s, t, 10_000 * (first_session + s) + 60 * i)
        for s, tracks in enumerate(sessions)
        for i, t in enumerate(tracks)
    ]
    return Events(
        fold=np.zeros(len(rows), np.int64),
        user_id=np.array([user] * len(rows)),
        session_id=np.array([r[0] for r in rows]),
        track_id=np.array([r[1] for r in rows]),
        artist_id=np.array([ARTIST[r[1]] for r in rows]),
        ts=np.array([r[2] for r in rows], np.int64),
        event=np.array(["play"] * len(rows)),
    )


TRAIN = [["a", "b", "c"], ["a", "b", "d"], ["a", "c"], ["e", "e", "b"]]


@pytest.fixture()
def log() -> SessionLog:
    train = events(TRAIN)
    catalog = EvalCatalog.build(np.array(list("abcdef")), np.array([""] * 6), train)
    return SessionLog.from_events(train, catalog)


def prefixes_for(log: SessionLog, sessions: list[list[str]]):
    """Prefix batch = each test session minus its last track (one pair per session)."""
    test = SessionLog.from_events(events(sessions, first_session=100), log.catalog)
    pairs = Pairs.from_log(test)
    last = np.r_[np.flatnonzero(np.diff(pairs.start) != 0), pairs.size - 1]
    return pairs.prefixes(last)


def col(log: SessionLog, track: str) -> int:
    return int(log.catalog.rows_of(np.array([track]))[0])


def test_catalog_rows_and_artists(log):
    cat = log.catalog
    assert cat.track_ids.tolist() == list("abcdef")
    assert cat.n_table == 6
    # '' in the table is filled from events; f never played: unknown artist
    assert cat.artist_names[cat.artist_codes[col(log, "c")]] == "Z"
    assert cat.artist_codes[col(log, "f")] == -1
    assert cat.rows_of(np.array(["zz", "b"])).tolist() == [-1, 1]


def test_popularity_ranks_most_played_first(log):
    scores = Popularity().fit(log).score(prefixes_for(log, [["a", "b"]]))
    assert scores[0].tolist() == [3, 3, 2, 1, 2, 0]


def test_markov_counts_direct_successors(log):
    scores = Markov().fit(log).score(prefixes_for(log, [["a", "b"], ["e", "b"]]))
    assert scores[0].tolist() == [0, 2, 1, 0, 0, 0]  # after a: b twice, c once
    assert scores[1].tolist() == [0, 1, 0, 0, 1, 0]  # after e: e once, b once


def test_sr_weighs_later_tracks_by_one_over_gap(log):
    scores = SequentialRules(window=10).fit(log).score(prefixes_for(log, [["a", "b"]]))
    # a->b: 1 + 1; a->c: 1/2 (session 0) + 1 (session 2); a->d: 1/2
    assert scores[0] == pytest.approx([0, 2, 1.5, 0.5, 0, 0])
    short = SequentialRules(window=1).fit(log).score(prefixes_for(log, [["a", "b"]]))
    assert short[0] == pytest.approx([0, 2, 1, 0, 0, 0])


def test_vsknn_votes_with_decayed_similarity(log):
    scores = VSKNN(k=100).fit(log).score(prefixes_for(log, [["a", "b", "x"]]))
    # prefix [a, b] weighs a 1/2, b 1: sessions 0 and 1 match 1.5, session 2 0.5, session 3 1
    assert scores[0][col(log, "c")] == pytest.approx(1.5 + 0.5)
    assert scores[0][col(log, "d")] == pytest.approx(1.5)
    assert scores[0][col(log, "e")] == pytest.approx(1.0)
    top1 = VSKNN(k=1).fit(log).score(prefixes_for(log, [["a", "b", "x"]]))
    # k=1: sessions 0 and 1 tie at the top (1.5) and both stay; session 3 (with e) drops out
    assert top1[0][col(log, "e")] == 0.0


def test_artist_continuation_puts_the_last_artist_first_most_played_first(log):
    scores = ArtistContinuation().fit(log).score(prefixes_for(log, [["d", "b"]]))
    order = np.argsort(-scores[0], kind="stable")
    # artist Z: c (2 plays) then d (1 play); then the rest by popularity: a, b (3), e (2)
    assert [log.catalog.track_ids[i] for i in order[:5]] == ["c", "d", "a", "b", "e"]


def test_session_signals(log):
    prefixes = prefixes_for(log, [["a", "c", "x"], ["e", "x"]])
    s = session_signals(prefixes.session_context(), SignalTables.fit(log))
    ids = log.catalog.track_ids.tolist()

    def named(mask: np.ndarray) -> list[str]:
        return [ids[i] for i in np.flatnonzero(mask)]

    assert named(s["last_artist"][0]) == ["c", "d"]  # f: artist unknown, never matches
    assert named(s["session_artist"][0]) == ["a", "c", "d"]
    assert named(s["in_session"][0]) == ["a", "c"]
    assert s["rules"][0].tolist() == [0] * 6  # c never had a successor in training
    # after e: e once at gap 1; b at gap 2 and at gap 1 (from the second e)
    assert s["rules"][1] == pytest.approx([0, 1.5, 0, 0, 1.0, 0])
    assert s["popularity"].tolist() == [3, 3, 2, 1, 2, 0]


def test_blend_prefers_the_last_artist_when_rules_are_silent(log):
    w = BlendWeights(gru=0.0, rules=1.0, last_artist=2.0, session_artist=0.0, in_session=0.0)
    scores = Blend(w).fit(log).score(prefixes_for(log, [["d", "x"]]))
    best = log.catalog.track_ids[np.argmax(scores[0])]
    assert best == "c"  # same artist as d, the most played of it


def test_sr_matrix_keeps_gaps_over_unknown_tracks():
    rows = np.array([0, -1, 1, 2])
    m = sr_matrix(rows, np.zeros(4, np.int64), 3, window=2)
    assert m[0, 1] == pytest.approx(0.5)  # two steps away, over the unknown track
    assert m[0, 2] == 0.0  # three steps: outside the window
    assert m[1, 2] == pytest.approx(1.0)


def test_sr_matrix_keeps_the_strongest_rules_per_item():
    rows = np.array([0, 1, 2, 3, 0, 3])
    sessions = np.array([0, 0, 0, 0, 1, 1])
    full = sr_matrix(rows, sessions, 4, window=3)
    pruned = sr_matrix(rows, sessions, 4, window=3, keep_per_item=1)
    assert full[0].toarray().ravel() == pytest.approx([0, 1, 0.5, 1 / 3 + 1])
    assert pruned[0].toarray().ravel() == pytest.approx([0, 0, 0, 1 / 3 + 1])


def test_rules_round_trip_through_a_model_dir(tmp_path):
    train = events(TRAIN)
    table = np.array(["b", "a", "c"])  # d and e are not in the table: skipped
    rules = build_rules(train, table)
    assert rules.shape == (3, 3)
    assert rules[1, 0] == pytest.approx(2.0)  # a -> b
    assert rules[1, 2] == pytest.approx(1.5)  # a -> c
    assert load_transitions(tmp_path) is None
    save_transitions(tmp_path, rules)
    loaded = load_transitions(tmp_path, n_tracks=3)
    assert (loaded != rules).nnz == 0
    with pytest.raises(ValueError, match="rules for 3 tracks"):
        load_transitions(tmp_path, n_tracks=4)
