"""What each listen event means for the radio: the one place the feedback semantics live.

| event    | the track                               | its artist                                   | session signals |
| -------- | --------------------------------------- | -------------------------------------------- | --------------- |
| play     | not queued again while recent           | -                                            | accepted        |
| complete | as play; forgives an earlier skip of it | forgives the artist's skips                  | accepted        |
| like     | as play; forgives an earlier skip of it | raised for `like_artist_s`, with the tracks  | accepted        |
|          |                                         | that resemble the liked one; clears its      |                 |
|          |                                         | skips and dislike                            |                 |
| skip     | after every other candidate             | after every other artist for `skip_artist_s`;| ignored         |
|          |                                         | `skips_to_drop_artist` skips: out of queue   |                 |
| dislike  | never queued again                      | out of the queue for `dislike_artist_s`      | ignored         |

"Accepted" events drive the session signals of the served blend (same artist as the last
track, artists and tracks of the session, rules from the last track); a skip or a dislike never
does. The GRU sees every event with its feedback one-hot (model.inputs). A "while" is measured
in event time (the listener's own clock: `ListenerState.last_ts`), so a replay is deterministic.
The marks live in the listener's state (`ListenerState.artist_marks`), so they survive restarts
and moves between workers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from radio_engine.listeners.state import ListenerState
from radio_engine.model.inputs import FEEDBACK_INDEX

if TYPE_CHECKING:
    from radio_engine.settings import Settings

#: events the listener kept listening to: the session signals follow only these
ACCEPTED = frozenset({"play", "complete", "like"})
_ACCEPTED = frozenset(FEEDBACK_INDEX[k] for k in ACCEPTED)
SKIP, DISLIKE, LIKE = FEEDBACK_INDEX["skip"], FEEDBACK_INDEX["dislike"], FEEDBACK_INDEX["like"]
#: artist marks kept per listener; past it the oldest skips go first, then the oldest others
MARKS_KEPT = 64


@dataclass(frozen=True)
class FeedbackRules:
    """How long feedback steers an artist, and how much a like raises a candidate's score."""

    skip_artist_s: float = 3600.0
    skips_to_drop_artist: int = 2
    dislike_artist_s: float = 30 * 86400.0
    like_artist_s: float = 30 * 86400.0
    like_artist_boost: float = 0.5
    like_similar_boost: float = 0.5

    @classmethod
    def from_settings(cls, settings: Settings) -> FeedbackRules:
        """The rules as configured (the Settings fields of the same names)."""
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls)})


@dataclass(frozen=True)
class ArtistFeedback:
    """One listener's artists as feedback left them: out of the queue, after the others, raised."""

    blocked: frozenset[str] = frozenset()
    pushed: frozenset[str] = frozenset()
    liked: frozenset[str] = frozenset()


def kinds_of_recent(state: ListenerState) -> bytes:
    """The feedback index of every recent event, aligned with `state.recent` (plays where the
    state does not say, as in records written before feedback was kept)."""
    n = len(state.recent)
    kinds = state.recent_kinds[-n:] if n else b""
    return bytes(n - len(kinds)) + kinds


def accepted_recent(
    state: ListenerState, session_only: bool = False
) -> tuple[list[str], list[str]]:
    """The recent tracks and their artists that the listener accepted (play, complete, like), in
    order; with `session_only`, just those of the current session."""
    kinds = kinds_of_recent(state)
    start = len(state.recent) - state.session_len if session_only else 0
    if session_only and not state.session_len:
        return [], []
    keep = [i for i in range(start, len(kinds)) if kinds[i] in _ACCEPTED]
    return [state.recent[i] for i in keep], [_artist_at(state, i) for i in keep]


def last_accepted(state: ListenerState) -> tuple[str, str]:
    """(track, artist) of the listener's last accepted event; ("", "") when none is recent."""
    kinds = kinds_of_recent(state)
    for i in range(len(kinds) - 1, -1, -1):
        if kinds[i] in _ACCEPTED:
            return state.recent[i], _artist_at(state, i)
    return "", ""


def _artist_at(state: ListenerState, i: int) -> str:
    """The artist of recent track i (the two lists are aligned at their ends; "" unknown)."""
    j = i - len(state.recent) + len(state.recent_artists)
    return state.recent_artists[j] if 0 <= j < len(state.recent_artists) else ""


def last_liked(state: ListenerState) -> str:
    """The most recent track the listener liked, if it is still among the recent ones."""
    kinds = kinds_of_recent(state)
    for i in range(len(kinds) - 1, -1, -1):
        if kinds[i] == LIKE:
            return state.recent[i]
    return ""


def mark_artist(state: ListenerState, kind: str, artist: str, ts: float) -> None:
    """Record what one event says about its artist (a play says nothing)."""
    if not artist or kind == "play":
        return
    marks = state.artist_marks
    if kind == "complete":
        marks = [m for m in marks if not (m[0] == artist and m[1] == SKIP)]
    elif kind == "like":
        marks = [m for m in marks if m[0] != artist]
        marks.append((artist, LIKE, ts))
    elif kind in ("skip", "dislike"):
        marks = [*marks, (artist, FEEDBACK_INDEX[kind], ts)]
    state.artist_marks = _capped(marks)


def _capped(marks: list[tuple[str, int, float]]) -> list[tuple[str, int, float]]:
    """At most MARKS_KEPT marks: the oldest skips go first (they expire soonest)."""
    extra = len(marks) - MARKS_KEPT
    if extra <= 0:
        return marks
    oldest_skips_first = sorted(range(len(marks)), key=lambda i: (marks[i][1] != SKIP, i))
    drop = set(oldest_skips_first[:extra])
    return [m for i, m in enumerate(marks) if i not in drop]


def artist_feedback(state: ListenerState, rules: FeedbackRules) -> ArtistFeedback:
    """Which artists are out of the queue, pushed after the others, or raised, at the time of
    the listener's last event."""
    if not state.artist_marks:
        return ArtistFeedback()
    now = state.last_ts
    skips: Counter[str] = Counter()
    disliked: set[str] = set()
    liked: set[str] = set()
    for artist, kind, ts in state.artist_marks:
        age = now - ts
        if kind == SKIP and age <= rules.skip_artist_s:
            skips[artist] += 1
        elif kind == DISLIKE and age <= rules.dislike_artist_s:
            disliked.add(artist)
        elif kind == LIKE and age <= rules.like_artist_s:
            liked.add(artist)
    run = {a for a, n in skips.items() if n >= rules.skips_to_drop_artist}
    blocked = disliked | run
    return ArtistFeedback(
        blocked=frozenset(blocked),
        pushed=frozenset(set(skips) - blocked),
        liked=frozenset(liked - blocked - set(skips)),
    )
