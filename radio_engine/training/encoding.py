"""Listening events as model inputs: the vocabulary (ids -> indices) and per-listener sequences.

Index 0 of tracks and artists is the learned "unknown" vector, so vocabulary indices start at 1.
The context part of every step input comes from the one shared function the worker calls too
(model.inputs.context_features); which events may be targets follows the shared definition of
an accepted event (model.session_indicators).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch

from radio_engine.model.inputs import CONTEXT_NAMES, context_features, feedback_indices
from radio_engine.model.session_indicators import accepted_feedback
from radio_engine.training.data import Events

#: column of the context that flags an event starting a new session
NEW_SESSION = CONTEXT_NAMES.index("new_session")


@dataclass
class Vocab:
    """Tracks and artists the model learns: index = position + 1 (0 is the unknown vector)."""

    track_ids: list[str]
    track_artists: list[str]
    artists: list[str]
    popularity: np.ndarray
    #: audio embedding of each track whose audio is known (the clips given to --audio)
    track_audio: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def build(cls, events: Events, track_audio: dict[str, np.ndarray] | None = None) -> Vocab:
        """Every track of `events`, most played first (ties by id), with its first artist."""
        counts = Counter(events.track_id.tolist())
        artist_of: dict[str, str] = {}
        for t, a in zip(events.track_id.tolist(), events.artist_id.tolist(), strict=True):
            artist_of.setdefault(t, a)
        tracks = sorted(counts, key=lambda t: (-counts[t], t))
        artists = sorted({a for a in artist_of.values() if a})
        return cls(
            tracks,
            [artist_of[t] for t in tracks],
            artists,
            np.array([counts[t] for t in tracks], dtype=np.float32),
            dict(track_audio or {}),
        )

    def audio_table(self, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(audio [V + 1, dim], has_audio [V + 1]) by vocabulary index; row 0 (unknown) empty."""
        audio = np.zeros((len(self.track_ids) + 1, dim), np.float32)
        has = np.zeros(len(self.track_ids) + 1, np.float32)
        for i, t in enumerate(self.track_ids):
            if t in self.track_audio:
                audio[i + 1], has[i + 1] = self.track_audio[t], 1.0
        return torch.from_numpy(audio), torch.from_numpy(has)

    @property
    def track_index(self) -> dict[str, int]:
        return {t: i + 1 for i, t in enumerate(self.track_ids)}

    @property
    def artist_index(self) -> dict[str, int]:
        return {a: i + 1 for i, a in enumerate(self.artists)}

    @cached_property
    def artist_of_track(self) -> np.ndarray:
        """Artist index by track index (0 for the unknown track), built once per vocabulary.

        Cached on the vocabulary itself: a cache keyed by id() could hand a later vocabulary
        that reuses a freed one's address the wrong artists."""
        aix = self.artist_index
        return np.array([0, *(aix.get(a, 0) for a in self.track_artists)], dtype=np.int64)


@dataclass
class Encoded:
    """Events as model inputs, grouped into one time-ordered sequence per listener."""

    ids: np.ndarray  # int64 [n] track index (0 unknown)
    artists: np.ndarray  # int64 [n]
    context: np.ndarray  # float32 [n, C]
    users: list[np.ndarray]  # row indices of each listener's events, in time order
    order: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    #: bool [n]: the event may be a target (not a skip or dislike; all True without feedback)
    accepted: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))


def accepted_events(events: Events) -> np.ndarray:
    """bool [n] in file order: the listener accepted the track (play, complete, like)."""
    return accepted_feedback(events.event)


def encode(events: Events, vocab: Vocab, feedback: bool = True) -> Encoded:
    """Inputs for every event (the shared context_features) and per-listener sequences.

    feedback=False (the ablation): every event is encoded as a play and may be a target."""
    order = np.lexsort((events.ts, events.user_id))  # stable: equal timestamps keep file order
    user = events.user_id[order]
    ts = events.ts[order]
    gap = np.full(len(order), np.nan)
    same = np.zeros(len(order), dtype=bool)
    same[1:] = user[1:] == user[:-1]
    gap[1:][same[1:]] = (ts[1:] - ts[:-1])[same[1:]]
    if feedback:
        kinds = feedback_indices(events.event[order])
        accepted = accepted_events(events)[order]
    else:
        kinds, accepted = np.zeros(len(order), np.int64), np.ones(len(order), bool)
    context = context_features(kinds, np.full(len(order), np.nan), gap, ts)
    tix, aix = vocab.track_index, vocab.artist_index
    ids = np.array([tix.get(t, 0) for t in events.track_id[order]], dtype=np.int64)
    artists = np.array([aix.get(a, 0) for a in events.artist_id[order]], dtype=np.int64)
    starts = np.flatnonzero(~same)
    bounds = [*starts.tolist(), len(order)]
    users = [np.arange(bounds[i], bounds[i + 1]) for i in range(len(starts))]
    return Encoded(ids, artists, context, users, order, accepted)
