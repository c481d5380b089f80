"""The feedback semantics as plain functions: artist marks, their windows, accepted tracks."""

from __future__ import annotations

import numpy as np

from radio_engine.listeners.feedback import (
    MARKS_KEPT,
    FeedbackRules,
    artist_feedback,
    kinds_of_recent,
    last_accepted,
    last_liked,
    mark_artist,
    recent_window,
)
from radio_engine.listeners.state import ListenerState
from radio_engine.model.inputs import FEEDBACK_INDEX

RULES = FeedbackRules(skip_artist_s=3600, skips_to_drop_artist=2, dislike_artist_s=86400)
T0 = 1_400_000_000.0


def state_after(*events: tuple[str, str, float]) -> ListenerState:
    """A state whose marks and clock come from (kind, artist, seconds after T0) events."""
    state = ListenerState.new(np.zeros(2, np.float32))
    for kind, artist, dt in events:
        mark_artist(state, kind, artist, T0 + dt)
        state.last_ts = T0 + dt
    return state


def test_one_skip_pushes_its_artist_for_a_while_and_a_run_of_skips_drops_it() -> None:
    once = artist_feedback(state_after(("skip", "A", 0), ("play", "B", 60)), RULES)
    assert once.pushed == {"A"} and not once.blocked
    run = artist_feedback(state_after(("skip", "A", 0), ("skip", "A", 60)), RULES)
    assert run.blocked == {"A"} and not run.pushed
    later = state_after(("skip", "A", 0), ("skip", "A", 60), ("play", "B", 3661 + 60))
    assert artist_feedback(later, RULES) == artist_feedback(state_after(), RULES)  # it expired


def test_a_dislike_drops_the_artist_for_a_long_while() -> None:
    state = state_after(("dislike", "A", 0), ("play", "B", 86000))
    assert artist_feedback(state, RULES).blocked == {"A"}
    state.last_ts = T0 + 86401
    assert not artist_feedback(state, RULES).blocked


def test_a_like_raises_the_artist_and_clears_its_skips_and_dislike() -> None:
    state = state_after(("skip", "A", 0), ("dislike", "A", 10), ("like", "A", 20))
    assert artist_feedback(state, RULES).liked == {"A"}
    assert state.artist_marks == [("A", FEEDBACK_INDEX["like"], T0 + 20)]
    # a newer skip of a liked artist pushes it: the newest word counts
    mark_artist(state, "skip", "A", T0 + 30)
    fb = artist_feedback(state, RULES)
    assert fb.pushed == {"A"} and not fb.liked


def test_a_complete_forgives_the_artists_skips_and_a_play_says_nothing() -> None:
    state = state_after(("skip", "A", 0), ("skip", "A", 5), ("play", "A", 10))
    assert artist_feedback(state, RULES).blocked == {"A"}
    mark_artist(state, "complete", "A", T0 + 20)
    assert state.artist_marks == [] and artist_feedback(state, RULES).blocked == frozenset()


def test_marks_are_capped_oldest_skips_first() -> None:
    state = state_after(("dislike", "D", 0), *[("skip", f"s{i}", i) for i in range(MARKS_KEPT)])
    assert len(state.artist_marks) == MARKS_KEPT
    assert state.artist_marks[0][0] == "D" and state.artist_marks[1][0] == "s1"


def test_session_signals_see_only_accepted_tracks() -> None:
    kinds = [FEEDBACK_INDEX[k] for k in ("play", "complete", "skip", "like", "dislike")]
    state = ListenerState(
        h=np.zeros(2, np.float32),
        recent=["t1", "t2", "t3", "t4", "t5"],
        recent_artists=["A", "B", "C", "D", "E"],
        recent_kinds=bytes(kinds),
        session_len=4,
    )
    assert last_accepted(state) == ("t4", "D")
    assert last_liked(state) == "t4"
    # the window the session indicators read: the session (t2..t5), t1 before it being no
    # longer needed (t4 is a later accepted track)
    window = recent_window(state)
    assert window.tracks == ["t2", "t3", "t4", "t5"] and window.artists == ["B", "C", "D", "E"]
    assert window.accepted == [True, False, True, False]
    assert window.in_session == [True] * 4
    # a session of rejections only: the window reaches back to the last accepted track
    state.session_len = 1
    window = recent_window(state)
    assert window.tracks == ["t4", "t5"] and window.in_session == [False, True]
    # a state written before kinds were kept reads as plays
    old = ListenerState(h=np.zeros(2, np.float32), recent=["x", "y"], recent_artists=["A", "B"])
    assert kinds_of_recent(old) == b"\0\0" and last_accepted(old) == ("y", "B")
