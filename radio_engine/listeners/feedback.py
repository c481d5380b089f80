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
from radio_engine.model.session_indicators import ACCEPTED_INDICES

if TYPE_CHECKING:
    from radio_engine.settings import Settings

#: feedback indices of the events the listener kept (play, complete, like): the session signals
#: follow only these (model.session_indicators defines them for serving, training and evaluation)
_ACCEPTED = ACCEPTED_INDICES
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


@dataclass(frozen=True)
class RecentWindow:
    """A listener's recent events as the shared session indicators read them
    (model.session_indicators), oldest first: tracks, artists ("" unknown), their feedback
    (FEEDBACK_INDEX, one byte each) and how many of the last ones are the current session."""

    tracks: list[str]
    artists: list[str]
    kinds: bytes
    session: int

    @property
    def accepted(self) -> list[bool]:
        """Which events the listener accepted (play, complete, like)."""
        return [k in _ACCEPTED for k in self.kinds]

    @property
    def in_session(self) -> list[bool]:
        """Which events belong to the current session."""
        n = len(self.tracks)
        return [i >= n - self.session for i in range(n)]


def recent_window(state: ListenerState) -> RecentWindow:
    """The listener's window: its recent events (`state.recent`, the last history_length), the
    last `state.session_len` of them in the current session. Events the indicators cannot read
    are left out: the window starts at the session or at the last accepted event, the earlier."""
    n = len(state.recent)
    kinds = kinds_of_recent(state)
    session = min(state.session_len, n)
    last = next((i for i in range(n - 1, -1, -1) if kinds[i] in _ACCEPTED), n)
    start = min(n - session, last)
    m = n - start
    artists = state.recent_artists[-m:] if m else []  # aligned with `recent` at the end
    if len(artists) < m:
        artists = [""] * (m - len(artists)) + artists
    return RecentWindow(state.recent[start:], artists, kinds[start:], session)


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
