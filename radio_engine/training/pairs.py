"""Events encoded for evaluation: one candidate catalog, sessions as row arrays, next-track pairs.

Every method (model and baselines) scores the same candidate rows and the same pairs, so their
numbers are comparable. A pair is (session prefix -> next track) at every position >= 1 of a
session; events inside a session keep time order, and equal timestamps keep the file's order.
The session indicators of a prefix are the shared ones (model.session_indicators): the prefix's
accepted events, and the listener's last accepted event before the session when the prefix has
none (as the worker, which remembers the listener's recent events, would know it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from radio_engine.model.inputs import feedback_indices
from radio_engine.model.session_indicators import (
    NONE,
    SessionContext,
    accepted_feedback,
    session_context,
)


class EventColumns(Protocol):
    """The columns of events that evaluation reads (training.data.Events has them)."""

    fold: np.ndarray
    user_id: np.ndarray
    session_id: np.ndarray
    track_id: np.ndarray
    artist_id: np.ndarray
    ts: np.ndarray
    event: np.ndarray


def _as_str(values: np.ndarray) -> np.ndarray:
    """Ids as strings, the form the model's track table uses."""
    return np.asarray(values).astype(str)


@dataclass(frozen=True)
class EvalCatalog:
    """Every track the evaluation knows, in three blocks of rows.

    [0, n_table): the model's track table (tracks.npz order); [n_table, n_warm): other tracks
    played in training, sorted by id; [n_warm, N): tracks first seen after training (test),
    sorted by id. Warm candidates are the rows below n_warm. track_ids [N] str; artist_codes
    [N] int64 (index into artist_names, -1 unknown). Sorting by id, not first appearance,
    keeps the time of a track's first play out of the candidate order.
    """

    track_ids: np.ndarray
    artist_codes: np.ndarray
    artist_names: np.ndarray
    n_table: int
    n_warm: int

    @property
    def size(self) -> int:
        return int(self.track_ids.shape[0])

    @classmethod
    def build(
        cls,
        table_track_ids: np.ndarray,
        table_artist_ids: np.ndarray,
        train: EventColumns | None = None,
        *later: EventColumns,
    ) -> EvalCatalog:
        """The table, then the other tracks of `train`, then those only in the `later` sets.

        A table artist '' (unknown) is filled from the events' artist of that track.
        """
        table_ids = _as_str(table_track_ids)
        sets = [] if train is None else [train, *later]
        ids = [_as_str(e.track_id) for e in sets]
        arts = [_as_str(e.artist_id) for e in sets]
        all_ids = np.concatenate([np.zeros(0, str), *ids])
        all_arts = np.concatenate([np.zeros(0, str), *arts])
        uniq, first = np.unique(all_ids, return_index=True)  # artist: a track's first event's
        train_only = np.setdiff1d(ids[0] if ids else np.zeros(0, str), table_ids)
        later_only = np.setdiff1d(np.setdiff1d(uniq, table_ids), train_only)
        track_ids = np.concatenate([table_ids, train_only, later_only])
        event_artist = np.full(track_ids.size, "", dtype=object)
        pos = np.searchsorted(uniq, track_ids)
        found = (pos < uniq.size) & (uniq[np.minimum(pos, uniq.size - 1)] == track_ids)
        event_artist[found] = all_arts[first[pos[found]]]
        artists = np.concatenate([_as_str(table_artist_ids), event_artist[table_ids.size :]])
        artists = np.where(artists == "", event_artist, artists).astype(str)
        names, codes = np.unique(artists, return_inverse=True)
        codes = codes.astype(np.int64)
        if names.size and names[0] == "":
            codes -= 1  # '' sorts first: it becomes -1, unknown
            names = names[1:]
        n_warm = table_ids.size + train_only.size
        return cls(track_ids, codes, names, int(table_ids.size), int(n_warm))

    def rows_of(self, track_ids: np.ndarray) -> np.ndarray:
        """Candidate row of each track id, -1 where the track is not a candidate."""
        return _lookup(self.track_ids, _as_str(track_ids))

    def artist_codes_of(self, artist_ids: np.ndarray) -> np.ndarray:
        """Artist code of each artist id, -1 where the artist is unknown."""
        return _lookup(self.artist_names, _as_str(artist_ids))


def _lookup(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Position of each value in keys (unsorted, unique), -1 where absent."""
    if keys.size == 0:
        return np.full(values.shape[0], -1, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    pos = np.clip(np.searchsorted(sorted_keys, values), 0, keys.size - 1)
    found = sorted_keys[pos] == values
    return np.where(found, order[pos], -1).astype(np.int64)


@dataclass(frozen=True)
class SessionLog:
    """Events grouped by session, each session in time order (ties: file order).

    rows/artists/users/ts [E] in session order; accepted [E]: play, complete or like (the
    events the session indicators follow); kinds [E]: each event's feedback as an index into
    model.inputs.FEEDBACK_TYPES (what the GRU reads); starts [S+1] session offsets;
    event_index [E]: position of each event in the original events (file order).
    """

    catalog: EvalCatalog
    rows: np.ndarray
    artists: np.ndarray
    users: np.ndarray
    ts: np.ndarray
    starts: np.ndarray
    event_index: np.ndarray
    accepted: np.ndarray
    kinds: np.ndarray

    @classmethod
    def from_events(cls, events: EventColumns, catalog: EvalCatalog) -> SessionLog:
        """Encode events against the catalog and group them by (fold, session)."""
        n = np.asarray(events.ts).shape[0]
        fold = np.asarray(events.fold)
        session = np.asarray(events.session_id)
        ts = np.asarray(events.ts, dtype=np.float64)
        order = np.lexsort((np.arange(n), ts, session, fold))
        new_session = np.ones(n, dtype=bool)
        if n:
            f, s = fold[order], session[order]
            new_session[1:] = (f[1:] != f[:-1]) | (s[1:] != s[:-1])
        starts = np.append(np.flatnonzero(new_session), n).astype(np.int64)
        return cls(
            catalog=catalog,
            rows=catalog.rows_of(np.asarray(events.track_id)[order]),
            artists=catalog.artist_codes_of(np.asarray(events.artist_id)[order]),
            users=_as_str(np.asarray(events.user_id)[order]),
            ts=ts[order],
            starts=starts,
            event_index=order.astype(np.int64),
            accepted=accepted_feedback(np.asarray(events.event)[order]),
            kinds=feedback_indices(np.asarray(events.event)[order]),
        )

    @property
    def n_sessions(self) -> int:
        return int(self.starts.shape[0] - 1)

    def session_of_event(self) -> np.ndarray:
        """Session number of every event [E]."""
        return np.repeat(np.arange(self.n_sessions), np.diff(self.starts))


@dataclass(frozen=True)
class Carried:
    """Per session (or pair): the listener's last accepted event before the session started.

    found [S] bool; rows / artists [S]: its candidate row and artist code (-1 unknown)."""

    found: np.ndarray
    rows: np.ndarray
    artists: np.ndarray

    def take(self, select: np.ndarray | slice) -> Carried:
        return Carried(self.found[select], self.rows[select], self.artists[select])


@dataclass(frozen=True)
class _Timeline:
    """The events of several logs in one order: by listener, then time (ties: earlier logs
    first, then each log's own order). order [n]: concatenated-log index of each timeline
    entry; listener [n]: its listener number; position [n]: timeline index of each
    concatenated event; the last log's events are the concatenation's last ones."""

    logs: tuple[SessionLog, ...]
    order: np.ndarray
    listener: np.ndarray
    position: np.ndarray

    @classmethod
    def of(cls, log: SessionLog, *before: SessionLog) -> _Timeline:
        logs = (*before, log)
        users = np.concatenate([x.users for x in logs])
        ts = np.concatenate([x.ts for x in logs])
        source = np.repeat(np.arange(len(logs)), [x.rows.shape[0] for x in logs])
        n = users.shape[0]
        _, listener = np.unique(users, return_inverse=True)
        order = np.lexsort((np.arange(n), source, ts, listener))
        position = np.empty(n, dtype=np.int64)
        position[order] = np.arange(n)
        return cls(logs, order, listener[order], position)

    def column(self, name: str) -> np.ndarray:
        """A SessionLog column (rows, artists, accepted, ...) in timeline order."""
        return np.concatenate([getattr(x, name) for x in self.logs])[self.order]

    def of_last_log(self, index: np.ndarray) -> np.ndarray:
        """Timeline index of events of the last log (indices into its own arrays)."""
        return self.position[self.position.shape[0] - self.logs[-1].rows.shape[0] + index]


def carried_into_sessions(log: SessionLog, *before: SessionLog) -> Carried:
    """For each session of `log`, the listener's last accepted event before its first event,
    among the `before` logs (e.g. the training events) and the log's own earlier sessions, by
    time (ties: `before` first, then the log's order)."""
    line = _Timeline.of(log, *before)
    n = line.order.shape[0]
    first_of_listener = np.ones(n, dtype=bool)
    first_of_listener[1:] = line.listener[1:] != line.listener[:-1]
    listener_start = np.maximum.accumulate(np.where(first_of_listener, np.arange(n), 0))
    last = np.maximum.accumulate(np.where(line.column("accepted"), np.arange(n), -1))
    # the last accepted event strictly before each event, within the same listener
    before_it = np.concatenate([[-1], last[:-1]])
    before_it = np.where(before_it >= listener_start, before_it, -1)
    at = before_it[line.of_last_log(log.starts[:-1])]
    found = at >= 0
    picked = np.maximum(at, 0)
    rows, artists = line.column("rows")[picked], line.column("artists")[picked]
    return Carried(found, np.where(found, rows, NONE), np.where(found, artists, NONE))


def recent_rows(pairs: Pairs, window: int, *before: SessionLog) -> np.ndarray:
    """[M, window] candidate rows of each pair's listener's last `window` events before its
    target (any feedback; -1 padding or unknown), in the `before` logs and the pairs' own log,
    by time (ties: `before` first, then the log's order): the tracks the worker's listener
    state remembers and never queues again (Settings.history_length)."""
    line = _Timeline.of(pairs.log, *before)
    target_at = line.of_last_log(pairs.start + pairs.length)
    back = target_at[:, None] - np.arange(window, 0, -1)[None, :]  # oldest first
    inside = back >= 0
    back = np.maximum(back, 0)
    inside &= line.listener[back] == line.listener[target_at][:, None]
    return np.where(inside, line.column("rows")[back], NONE)


@dataclass(frozen=True)
class Prefixes:
    """A batch of session prefixes: what came before each pair's target in its session.

    rows/artists [P] flat (candidate rows / artist codes, -1 unknown); accepted [P]; offsets
    [B+1]; users [B] the listener of each prefix; carried [B]: the listener's last accepted event
    before the session (carried_into_sessions).
    """

    rows: np.ndarray
    artists: np.ndarray
    offsets: np.ndarray
    users: np.ndarray
    accepted: np.ndarray
    carried: Carried

    @property
    def size(self) -> int:
        return int(self.offsets.shape[0] - 1)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def last_rows(self) -> np.ndarray:
        return self.rows[self.offsets[1:] - 1]

    @property
    def last_artists(self) -> np.ndarray:
        return self.artists[self.offsets[1:] - 1]

    @property
    def batch_of(self) -> np.ndarray:
        """Prefix number of every flat entry [P]."""
        return np.repeat(np.arange(self.size), self.lengths)

    @property
    def positions(self) -> np.ndarray:
        """1-based position of every flat entry inside its prefix [P]."""
        return np.arange(self.rows.shape[0]) - np.repeat(self.offsets[:-1], self.lengths) + 1

    def session_context(self) -> SessionContext:
        """What the shared session indicators read: each prefix as a window (its session's
        events, right-aligned) after the event carried from before the session."""
        b, lengths = self.size, self.lengths
        width = int(lengths.max(initial=0)) + 1
        tracks = np.full((b, width), NONE, dtype=np.int64)
        artists = np.full((b, width), NONE, dtype=np.int64)
        accepted = np.zeros((b, width), dtype=bool)
        in_session = np.zeros((b, width), dtype=bool)
        tracks[:, 0], artists[:, 0] = self.carried.rows, self.carried.artists
        accepted[:, 0] = self.carried.found
        who = self.batch_of
        col = width - np.repeat(lengths, lengths) + self.positions - 1
        tracks[who, col], artists[who, col] = self.rows, self.artists
        accepted[who, col], in_session[who, col] = self.accepted, True
        return session_context(tracks, artists, accepted, in_session)


@dataclass(frozen=True)
class Pairs:
    """Next-track pairs of a session log: prefix = log[start : start + length], target after.

    target_rows/target_artists [M]; cold [M]: target unseen in training (row >= n_warm);
    prev_event/target_event [M]: original event positions of the last prefix event and target;
    carried [M]: the listener's last accepted event before the pair's session.
    """

    log: SessionLog
    start: np.ndarray
    length: np.ndarray
    target_rows: np.ndarray
    target_artists: np.ndarray
    cold: np.ndarray
    prev_event: np.ndarray
    target_event: np.ndarray
    carried: Carried

    @classmethod
    def from_log(cls, log: SessionLog, *before: SessionLog) -> Pairs:
        """One pair at every position >= 1 of every session; `before`: the logs of the
        listeners' earlier events (e.g. training), for what a session carries in."""
        session_of = log.session_of_event()
        pos = np.arange(log.rows.shape[0]) - log.starts[session_of]
        target = np.flatnonzero(pos >= 1)
        start = log.starts[session_of[target]]
        rows = log.rows[target]
        return cls(
            log=log,
            start=start,
            length=target - start,
            target_rows=rows,
            target_artists=log.artists[target],
            cold=(rows < 0) | (rows >= log.catalog.n_warm),
            prev_event=log.event_index[target - 1],
            target_event=log.event_index[target],
            carried=carried_into_sessions(log, *before).take(session_of[target]),
        )

    @property
    def size(self) -> int:
        return int(self.start.shape[0])

    def take(self, select: np.ndarray) -> Pairs:
        """The selected pairs (a mask or indices) of the same log, e.g. accepted targets only."""
        return Pairs(
            self.log,
            *(
                getattr(self, name)[select]
                for name in (
                    "start",
                    "length",
                    "target_rows",
                    "target_artists",
                    "cold",
                    "prev_event",
                    "target_event",
                )
            ),
            carried=self.carried.take(select),
        )

    @property
    def prev_position(self) -> np.ndarray:
        """Position in the log of the last prefix event of every pair [M]."""
        return self.start + self.length - 1

    def prefixes(self, select: np.ndarray | slice) -> Prefixes:
        """The prefixes of the selected pairs, as one flat batch."""
        start = self.start[select]
        length = self.length[select]
        offsets = np.zeros(start.shape[0] + 1, dtype=np.int64)
        np.cumsum(length, out=offsets[1:])
        flat = np.repeat(start - offsets[:-1], length) + np.arange(offsets[-1])
        return Prefixes(
            rows=self.log.rows[flat],
            artists=self.log.artists[flat],
            offsets=offsets,
            users=self.log.users[start],
            accepted=self.log.accepted[flat],
            carried=self.carried.take(select),
        )
