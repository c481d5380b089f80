"""Next-track baselines the model must beat, scored over the same candidate rows.

Each baseline has fit(train: SessionLog) and score(prefixes) -> float32 [B, N] (larger is
better). All are numpy / scipy.sparse over whole batches of prefixes. `session_signals` gives
the cheap signals that the blend baseline and the served blend share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

import numpy as np
import scipy.sparse as sp

from radio_engine.selector.blend import BlendWeights, blend_scores
from radio_engine.training.pairs import Prefixes, SessionLog
from radio_engine.training.rules import DEFAULT_WINDOW, sr_matrix


def dense_rows(matrix: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """matrix[rows] as dense float32; rows < 0 give zero rows."""
    rows = np.asarray(rows, dtype=np.int64)
    out = matrix[np.maximum(rows, 0)].toarray().astype(np.float32, copy=False)
    out[rows < 0] = 0.0
    return out


def play_counts(log: SessionLog) -> np.ndarray:
    """Plays of every candidate row in a log [N] float32."""
    known = log.rows[log.rows >= 0]
    return np.bincount(known, minlength=log.catalog.size).astype(np.float32)


def artist_tracks(artist_codes: np.ndarray, n_artists: int) -> sp.csr_matrix:
    """Indicator [n_artists, N]: which candidate rows belong to which artist."""
    codes = np.asarray(artist_codes, dtype=np.int64)
    rows = np.flatnonzero(codes >= 0)
    return sp.csr_matrix(
        (np.ones(rows.size, np.float32), (codes[rows], rows)), shape=(n_artists, codes.size)
    )


@dataclass
class SignalTables:
    """What the cheap session signals need from training: SR rules, artists, popularity."""

    rules: sp.csr_matrix
    by_artist: sp.csr_matrix
    popularity: np.ndarray

    @classmethod
    def fit(cls, log: SessionLog, window: int = DEFAULT_WINDOW) -> SignalTables:
        """Rules and popularity from the training log; artists from the catalog."""
        catalog = log.catalog
        return cls(
            rules=sr_matrix(log.rows, log.session_of_event(), catalog.size, window),
            by_artist=artist_tracks(catalog.artist_codes, catalog.artist_names.size),
            popularity=play_counts(log),
        )


def session_indicators(prefixes: Prefixes, by_artist: sp.csr_matrix) -> dict[str, np.ndarray]:
    """Dense [B, N] bool indicators of a batch: same_last_artist, in_session_artist,
    in_session_track; by_artist [n_artists, N] from artist_tracks."""
    b = prefixes.size
    n_artists, n = by_artist.shape
    batch_of = prefixes.batch_of
    known_art = prefixes.artists >= 0
    session_artists = sp.csr_matrix(
        (
            np.ones(int(known_art.sum()), np.float32),
            (batch_of[known_art], prefixes.artists[known_art]),
        ),
        shape=(b, n_artists),
    )
    known_row = prefixes.rows >= 0
    in_track = np.zeros((b, n), dtype=bool)
    in_track[batch_of[known_row], prefixes.rows[known_row]] = True
    return {
        "same_last_artist": dense_rows(by_artist, prefixes.last_artists) > 0,
        "in_session_artist": (session_artists @ by_artist).toarray() > 0,
        "in_session_track": in_track,
    }


def session_signals(prefixes: Prefixes, tables: SignalTables) -> dict[str, np.ndarray]:
    """Dense [B, N] signals of a batch: rules (SR from the last track) and the
    session_indicators; plus popularity [N]."""
    return {
        "rules": dense_rows(tables.rules, prefixes.last_rows),
        **session_indicators(prefixes, tables.by_artist),
        "popularity": tables.popularity,
    }


class Popularity:
    """Most played tracks in training, the same list for everyone."""

    name = "popularity"

    def fit(self, log: SessionLog) -> Self:
        self.counts = play_counts(log)
        return self

    def score(self, prefixes: Prefixes) -> np.ndarray:
        return np.broadcast_to(self.counts, (prefixes.size, self.counts.size)).copy()


class Markov:
    """First-order Markov chain: how often each track directly followed the last track."""

    name = "markov"

    def fit(self, log: SessionLog) -> Self:
        self.transitions = sr_matrix(log.rows, log.session_of_event(), log.catalog.size, window=1)
        return self

    def score(self, prefixes: Prefixes) -> np.ndarray:
        return dense_rows(self.transitions, prefixes.last_rows)


@dataclass
class SequentialRules:
    """session-rec's SR: tracks that followed the last track within `window`, weight 1/gap."""

    window: int = DEFAULT_WINDOW
    name: str = "sr"
    rules: sp.csr_matrix = field(init=False, repr=False)

    def fit(self, log: SessionLog) -> Self:
        self.rules = sr_matrix(log.rows, log.session_of_event(), log.catalog.size, self.window)
        return self

    def score(self, prefixes: Prefixes) -> np.ndarray:
        return dense_rows(self.rules, prefixes.last_rows)


@dataclass
class VSKNN:
    """Session-kNN with linear decay (V-SKNN): the current session's track at position p of
    L weighs p / L; the k training sessions with the highest dot product vote for their tracks
    with that similarity. Every training session is a neighbour candidate (no sampling)."""

    k: int = 100
    name: str = "vsknn"
    sessions: sp.csr_matrix = field(init=False, repr=False)

    def fit(self, log: SessionLog) -> Self:
        known = log.rows >= 0
        session_of = log.session_of_event()
        m = sp.csr_matrix(
            (np.ones(int(known.sum()), np.float32), (session_of[known], log.rows[known])),
            shape=(log.n_sessions, log.catalog.size),
        )
        m.data[:] = 1.0  # a track played twice in a session still counts once
        self.sessions = m
        self.sessions_t = m.T.tocsr()
        return self

    def score(self, prefixes: Prefixes) -> np.ndarray:
        b = prefixes.size
        known = prefixes.rows >= 0
        decay = prefixes.positions / np.repeat(prefixes.lengths, prefixes.lengths)
        query = sp.csr_matrix(
            (decay[known].astype(np.float32), (prefixes.batch_of[known], prefixes.rows[known])),
            shape=(b, self.sessions.shape[1]),
        )
        query.data = np.minimum(query.data, 1.0)  # a repeated track: weights summed, capped at 1
        sim = (query @ self.sessions_t).toarray()
        n_sessions = sim.shape[1]
        if n_sessions > self.k:
            cut = np.argpartition(-sim, self.k - 1, axis=1)[:, self.k - 1 : self.k]
            kth = np.take_along_axis(sim, cut, axis=1)
            sim[sim < kth] = 0.0
        return (sp.csr_matrix(sim) @ self.sessions).toarray().astype(np.float32, copy=False)


class ArtistContinuation:
    """The last track's artist's tracks, most played first; then everything by popularity."""

    name = "artist"

    def fit(self, log: SessionLog) -> Self:
        catalog = log.catalog
        self.counts = play_counts(log)
        self.by_artist = artist_tracks(catalog.artist_codes, catalog.artist_names.size)
        return self

    def score(self, prefixes: Prefixes) -> np.ndarray:
        same = dense_rows(self.by_artist, prefixes.last_artists)
        return same * np.float32(1.0 + self.counts.max(initial=0.0)) + self.counts


@dataclass
class Blend:
    """The cheap-signal blend: log(1 + SR) + artist and in-session bonuses, popularity ties."""

    weights: BlendWeights = field(default_factory=lambda: BlendWeights(gru=0.0))
    name: str = "blend"
    tables: SignalTables = field(init=False, repr=False)

    def fit(self, log: SessionLog) -> Self:
        self.tables = SignalTables.fit(log)
        return self

    def score(self, prefixes: Prefixes) -> np.ndarray:
        s = session_signals(prefixes, self.tables)
        return blend_scores(
            None,
            s["rules"],
            s["same_last_artist"],
            s["in_session_artist"],
            s["in_session_track"],
            s["popularity"],
            self.weights,
        )
