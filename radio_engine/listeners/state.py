"""A listener's state: GRU hidden state, short history, queue and candidate pool, as compact bytes.

The bytes are the Faust table value (with its Kafka changelog), so they are kept small and quick
to (de)serialise: a fixed 42-byte header, the float32 hidden state, the candidate pool as int32
catalog rows, the list lengths, the recent tracks' int32 catalog rows, then every id list as one
NUL-joined UTF-8 string (orjson when an id holds a NUL).
Rows are caches: they mean something only to the catalog instance that made them
(`pool_catalog`), so another worker simply rebuilds them from the ids.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np
import orjson

_MAGIC = 0xA2
_OLD_MAGIC = 0xA1  # the first format: pool as ids inside the orjson lists
_ORJSON_LISTS = 0x01  # flag: the id lists are an orjson array (an id contained a NUL)
# magic, flags, hidden, version, last_offset, last_ts, events, pool_catalog, pool_epoch,
# session_len, pool length
_HEADER = struct.Struct("<BBHIqdIIIHI")
_COUNTS = struct.Struct("<HHHHH")  # lengths of recent, recent_artists, disliked, skipped, queue
_OLD_HEADER = struct.Struct("<BHIqdIII")
_SEP = "\x00"
#: a recent track whose catalog row was not looked up yet (its event was just applied)
UNRESOLVED = -2


@dataclass
class ListenerState:
    """Everything the engine remembers about one listener.

    version: the queue's version, bumped only when the queue changes (never shrinks);
    last_offset: the listens-partition offset last applied (an event at or below it is a
    duplicate); pool_rows: candidate catalog rows, valid for catalog `pool_catalog` as of
    `pool_epoch`; recent_rows: the catalog rows of `recent` (same length; -1 not in the
    catalog, UNRESOLVED not looked up yet), valid for `pool_catalog` too; session_len: how many
    of the recent tracks belong to the current session.
    """

    h: np.ndarray
    version: int = 0
    last_offset: int = -1
    last_ts: float = 0.0
    events: int = 0
    pool_catalog: int = 0
    pool_epoch: int = 0
    session_len: int = 0
    recent: list[str] = field(default_factory=list)
    recent_artists: list[str] = field(default_factory=list)
    disliked: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    queue: list[str] = field(default_factory=list)
    pool_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    recent_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))

    @classmethod
    def new(cls, h0: np.ndarray) -> ListenerState:
        """A listener never seen before: the model's learned h0 and nothing else."""
        return cls(h=np.array(h0, dtype=np.float32, copy=True))

    def session_artists(self) -> list[str]:
        """Artists played in the current session (since the last long gap)."""
        return self.recent_artists[-self.session_len :] if self.session_len else []

    def session_tracks(self) -> list[str]:
        """Tracks played in the current session."""
        return self.recent[-self.session_len :] if self.session_len else []

    def to_bytes(self) -> bytes:
        """Compact binary form for the table and its changelog."""
        lists = (self.recent, self.recent_artists, self.disliked, self.skipped, self.queue)
        flat = [s for items in lists for s in items]
        text = _SEP.join(flat)
        flags = 0
        if text.count(_SEP) != max(len(flat) - 1, 0):
            flags, tail = _ORJSON_LISTS, orjson.dumps(list(lists))
        else:
            tail = text.encode()
        pool = np.asarray(self.pool_rows, dtype="<i4")
        rows = aligned_rows(self.recent_rows, len(self.recent))
        header = _HEADER.pack(
            _MAGIC,
            flags,
            self.h.shape[0],
            self.version,
            self.last_offset,
            self.last_ts,
            self.events,
            self.pool_catalog,
            self.pool_epoch,
            self.session_len,
            pool.size,
        )
        return b"".join(
            (
                header,
                np.asarray(self.h, dtype="<f4").tobytes(),
                pool.tobytes(),
                _COUNTS.pack(*(len(items) for items in lists)),
                rows.tobytes(),
                tail,
            )
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> ListenerState:
        """Inverse of to_bytes; raises ValueError on bytes that are not a listener state."""
        if len(raw) >= _OLD_HEADER.size and raw[0] == _OLD_MAGIC:
            return _from_old_bytes(raw)
        if len(raw) < _HEADER.size or raw[0] != _MAGIC:
            raise ValueError("not a listener state record")
        (
            _,
            flags,
            hidden,
            version,
            last_offset,
            last_ts,
            events,
            pool_catalog,
            pool_epoch,
            session_len,
            pool_n,
        ) = _HEADER.unpack_from(raw)
        at = _HEADER.size
        if len(raw) < at + 4 * hidden + 4 * pool_n + _COUNTS.size:
            raise ValueError("listener state record is truncated")
        h = np.frombuffer(raw, dtype="<f4", count=hidden, offset=at).astype(np.float32)
        at += 4 * hidden
        pool = np.frombuffer(raw, dtype="<i4", count=pool_n, offset=at).astype(np.int32)
        at += 4 * pool_n
        counts = _COUNTS.unpack_from(raw, at)
        at += _COUNTS.size
        if len(raw) < at + 4 * counts[0]:
            raise ValueError("listener state record is truncated")
        recent_rows = np.frombuffer(raw, dtype="<i4", count=counts[0], offset=at).astype(np.int32)
        at += 4 * counts[0]
        try:
            if flags & _ORJSON_LISTS:
                lists = orjson.loads(raw[at:])
            else:
                flat = raw[at:].decode().split(_SEP) if sum(counts) else []
                if len(flat) != sum(counts):
                    raise ValueError("listener state id lists do not match their counts")
                lists, start = [], 0
                for n in counts:
                    lists.append(flat[start : start + n])
                    start += n
        except (UnicodeDecodeError, orjson.JSONDecodeError) as exc:
            raise ValueError(f"listener state id lists are unreadable: {exc}") from exc
        recent, recent_artists, disliked, skipped, queue = lists
        return cls(
            h=h,
            version=version,
            last_offset=last_offset,
            last_ts=last_ts,
            events=events,
            pool_catalog=pool_catalog,
            pool_epoch=pool_epoch,
            session_len=session_len,
            recent=recent,
            recent_artists=recent_artists,
            disliked=disliked,
            skipped=skipped,
            queue=queue,
            pool_rows=pool,
            recent_rows=recent_rows,
        )


def aligned_rows(rows: np.ndarray, n: int) -> np.ndarray:
    """The last n rows as little-endian int32, UNRESOLVED in front when there are fewer."""
    rows = np.asarray(rows, dtype="<i4")[max(len(rows) - n, 0) :] if n else np.zeros(0, "<i4")
    if rows.size < n:
        rows = np.concatenate([np.full(n - rows.size, UNRESOLVED, dtype="<i4"), rows])
    return rows


def new_listener(h0: np.ndarray) -> ListenerState:
    """A listener never seen before (same as ListenerState.new)."""
    return ListenerState.new(h0)


def _from_old_bytes(raw: bytes) -> ListenerState:
    """Read the first format (magic 0xA1); its pool of ids is dropped and rebuilt on use."""
    _, hidden, version, last_offset, last_ts, events, _, session_len = _OLD_HEADER.unpack_from(raw)
    end = _OLD_HEADER.size + 4 * hidden
    h = np.frombuffer(raw, dtype="<f4", count=hidden, offset=_OLD_HEADER.size).astype(np.float32)
    try:
        recent, recent_artists, disliked, queue, _pool = orjson.loads(raw[end:])
    except (orjson.JSONDecodeError, ValueError) as exc:
        raise ValueError(f"old listener state is unreadable: {exc}") from exc
    return ListenerState(
        h=h,
        version=version,
        last_offset=last_offset,
        last_ts=last_ts,
        events=events,
        session_len=session_len,
        recent=recent,
        recent_artists=recent_artists,
        disliked=disliked,
        queue=queue,
        recent_rows=np.full(len(recent), UNRESOLVED, dtype=np.int32),
    )
