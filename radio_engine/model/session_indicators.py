"""The session indicators of the served blend, defined once for serving, training and evaluation.

Three indicators say how a candidate track relates to what the listener is hearing:

| name             | true when the candidate...                                      |
| ---------------- | --------------------------------------------------------------- |
| `last_artist`    | is by the artist of the listener's last accepted track          |
| `session_artist` | is by an artist of a track accepted in the current session      |
| `in_session`     | is a track accepted in the current session                      |

"Accepted" is play, complete or like; a skip or a dislike never feeds them (the listener did not
want that track), though the GRU sees every event. The last accepted track may lie in an earlier
session (the listener came back and skipped the first track: the radio still follows what they
kept). Names are those of the blend weights (selector.blend.BlendWeights) and of the training
logits' learned weights.

Every side describes each listener by a window of recent events, oldest first, as [B, W]
tables: tracks and artists as integer codes (-1: unknown or padding), `accepted` (False for
padding) and `in_session` (the event belongs to the current session). The worker's window is the
listener state's recent tracks (listeners/feedback.py), training's the last events of each
session-parallel slot (training/session_memory.py), evaluation's a session prefix
(training/pairs.py). `session_context` reduces windows to what the indicators read and
`session_indicators` scores candidates against it, for a shared list of candidates or one per
listener.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from radio_engine.model.inputs import FEEDBACK_INDEX

#: feedback that means the listener kept the track: only these drive the session indicators
ACCEPTED_FEEDBACK = frozenset({"play", "complete", "like"})
#: the same, as indices into model.inputs.FEEDBACK_TYPES
ACCEPTED_INDICES = frozenset(FEEDBACK_INDEX[name] for name in ACCEPTED_FEEDBACK)
#: the indicators in the order of the training logits' weights (ListenerModel.session_weights)
INDICATORS: tuple[str, ...] = ("last_artist", "session_artist", "in_session")
#: code of an unknown track or artist, and of table padding
NONE = -1


def accepted_feedback(kinds: Iterable[str]) -> np.ndarray:
    """bool [n]: which events (feedback names: play, skip, ...) the listener accepted."""
    names = kinds if isinstance(kinds, np.ndarray) else np.asarray(list(kinds), dtype=str)
    return np.isin(names, sorted(ACCEPTED_FEEDBACK))


@dataclass(frozen=True)
class SessionContext:
    """What the indicators read for each of B listeners (codes, -1 none).

    last_track / last_artist [B]: the last accepted event's track and artist; tracks / artists
    [B, W]: those of the accepted events of the current session (-1 elsewhere).
    """

    last_track: np.ndarray
    last_artist: np.ndarray
    tracks: np.ndarray
    artists: np.ndarray

    @property
    def size(self) -> int:
        return int(self.last_track.shape[0])


def session_context(
    tracks: np.ndarray, artists: np.ndarray, accepted: np.ndarray, in_session: np.ndarray
) -> SessionContext:
    """The context of windows of recent events, [B, W] each, oldest first (see the module doc):
    the last accepted event anywhere in the window, the accepted events of the session."""
    tracks = np.asarray(tracks, dtype=np.int64)
    artists = np.asarray(artists, dtype=np.int64)
    accepted = np.asarray(accepted, dtype=bool)
    keep = accepted & np.asarray(in_session, dtype=bool)
    b, w = tracks.shape
    last_track = np.full(b, NONE, dtype=np.int64)
    last_artist = np.full(b, NONE, dtype=np.int64)
    found = np.flatnonzero(accepted.any(axis=1))
    if found.size:
        at = w - 1 - np.argmax(accepted[found, ::-1], axis=1)
        last_track[found] = tracks[found, at]
        last_artist[found] = artists[found, at]
    return SessionContext(
        last_track=last_track,
        last_artist=last_artist,
        tracks=np.where(keep, tracks, NONE),
        artists=np.where(keep, artists, NONE),
    )


@dataclass(frozen=True)
class Indicators:
    """The three indicators, bool [B, C] each (names as INDICATORS)."""

    last_artist: np.ndarray
    session_artist: np.ndarray
    in_session: np.ndarray

    def stacked(self) -> np.ndarray:
        """float32 [B, C, 3] in INDICATORS order: what the training logits weigh."""
        return np.stack([getattr(self, name) for name in INDICATORS], axis=-1).astype(np.float32)

    def as_dict(self) -> dict[str, np.ndarray]:
        """{name: [B, C] bool} by INDICATORS name (the keyword names of selector.blend)."""
        return {name: getattr(self, name) for name in INDICATORS}


def session_indicators(
    context: SessionContext, tracks: np.ndarray, artists: np.ndarray
) -> Indicators:
    """The indicators of candidates (track and artist codes, -1 unknown or padding): one list
    shared by every listener ([C]) or one per listener ([B, C]). Unknown never matches."""
    b = context.size
    tracks = np.asarray(tracks, dtype=np.int64)
    artists = np.asarray(artists, dtype=np.int64)
    last = context.last_artist[:, None]
    return Indicators(
        last_artist=(artists.reshape(-1, artists.shape[-1]) == last) & (last >= 0),
        session_artist=member(np.broadcast_to(artists, (b, artists.shape[-1])), context.artists),
        in_session=member(np.broadcast_to(tracks, (b, tracks.shape[-1])), context.tracks),
    )


def member(rows: np.ndarray, sets: np.ndarray) -> np.ndarray:
    """rows[b, i] in sets[b, :] for every listener b; -1 (padding, unknown) is never a member.

    One scratch flag per code, set and cleared per listener: O(C + W) a listener.
    """
    out = np.zeros(rows.shape, dtype=bool)
    if rows.size == 0 or sets.size == 0:
        return out
    live = np.flatnonzero((sets >= 0).any(axis=1))
    if live.size == 0:
        return out
    scratch = np.zeros(int(max(rows.max(), sets.max())) + 2, dtype=bool)  # [-1] is padding's
    shared = rows.strides[0] == 0  # one candidate list broadcast to every listener
    for b in live.tolist():
        these = sets[b]
        scratch[these] = True
        out[b] = scratch[rows[0] if shared else rows[b]]
        scratch[these] = False
    out &= rows >= 0
    return out
