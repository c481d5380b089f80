"""Next-track baselines the model must beat, scored over the same candidate rows.

Each baseline has fit(train: SessionLog) and score(prefixes) -> float32 [B, N] (larger is
better). All are numpy / scipy.sparse over whole batches of prefixes. `session_signals` gives
the cheap signals that the blend baseline and the served blend share (the session indicators
are model.session_indicators, the ones the worker serves).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

import numpy as np
import scipy.sparse as sp

from radio_engine.model.session_indicators import SessionContext, session_indicators
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
    artist_codes: np.ndarray
    popularity: np.ndarray

    @classmethod
    def fit(cls, log: SessionLog, window: int = DEFAULT_WINDOW) -> SignalTables:
        """Rules and popularity from the training log; artists from the catalog."""
        catalog = log.catalog
        return cls(
            rules=sr_matrix(log.rows, log.session_of_event(), catalog.size, window),
            artist_codes=catalog.artist_codes,
            popularity=play_counts(log),
        )


def session_signals(context: SessionContext, tables: SignalTables) -> dict[str, np.ndarray]:
    """Dense [B, N] signals over every candidate row of a batch of session contexts
    (Prefixes.session_context): rules (SR from the last accepted track) and the shared session
    indicators (last_artist, session_artist, in_session); plus popularity [N]."""
    n = tables.artist_codes.shape[0]
    indicators = session_indicators(context, np.arange(n), tables.artist_codes)
    return {
        "rules": dense_rows(tables.rules, context.last_track),
        **indicators.as_dict(),
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
        s = session_signals(prefixes.session_context(), self.tables)
        return blend_scores(
            None,
            s["rules"],
            s["last_artist"],
            s["session_artist"],
            s["in_session"],
            s["popularity"],
            self.weights,
        )
