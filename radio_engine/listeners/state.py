"""A listener's persisted state: GRU hidden state, short history and queue, as compact bytes.

The bytes are the Faust table value (with its Kafka changelog), so they hold only what must
survive a restart and are quick to (de)serialise: a fixed header, the float32 hidden state, the
list lengths, the 64-bit hashes of the last event_ids applied (when there are any), the feedback
of each recent event and the artist marks (listeners/feedback.py), then every id list as one
NUL-joined UTF-8 string (orjson when an id holds a NUL).
What the selector caches per listener (its candidate pool as catalog rows) is not state: it is
kept by the worker that serves the listener (`selector.pools`) and rebuilt after a move.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np
import orjson

_MAGIC = 0xA4
_IDS_MAGIC = 0xA3  # the previous format: no feedback kinds, no artist marks (read as plays)
_POOL_MAGIC = 0xA2  # the previous format: also held the pool and recent rows (ignored now)
_FIRST_MAGIC = 0xA1  # the first format: pool as ids inside the orjson lists
_ORJSON_LISTS = 0x01  # flag: the id lists are an orjson array (an id contained a NUL)
_EVENT_IDS = 0x02  # flag: a count and the event-id hashes follow the list lengths
_ID_COUNT = struct.Struct("<H")
# magic, flags, hidden, version, last_offset, last_ts, events, session_len
_HEADER = struct.Struct("<BBHIqdIH")
# lengths of recent, recent_artists, disliked, skipped, queue, and the artist marks
_COUNTS = struct.Struct("<HHHHHH")
_IDS_COUNTS = struct.Struct("<HHHHH")  # the 0xA3 format's: no marks
# the previous formats' headers (read only)
_POOL_HEADER = struct.Struct("<BBHIqdIIIHI")
_FIRST_HEADER = struct.Struct("<BHIqdIII")
_SEP = "\x00"


@dataclass
class ListenerState:
    """Everything the engine remembers about one listener across restarts.

    version: the queue's version, bumped only when the queue changes (never shrinks);
    last_offset: the listens-partition offset last applied (an event at or below it is a
    duplicate); session_len: how many of the recent tracks belong to the current session;
    event_ids: 64-bit hashes of the event_ids last applied, oldest first (a retry of one of
    them is a duplicate: listeners/history.event_id_hash); recent_kinds: the feedback of each
    recent event (model.inputs.FEEDBACK_INDEX, one byte per `recent` entry; missing leading
    bytes read as plays); artist_marks: (artist_id, feedback index, event time) of the skips,
    dislikes and likes that still steer the radio (listeners/feedback.py), oldest first;
    queue_scores: the scores the queue was published with (one per queue track), so the same
    message can be published again after a crash (listens/pipeline.py).
    """

    h: np.ndarray
    version: int = 0
    last_offset: int = -1
    last_ts: float = 0.0
    events: int = 0
    session_len: int = 0
    recent: list[str] = field(default_factory=list)
    recent_artists: list[str] = field(default_factory=list)
    disliked: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    queue: list[str] = field(default_factory=list)
    event_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    recent_kinds: bytes = b""
    artist_marks: list[tuple[str, int, float]] = field(default_factory=list)
    queue_scores: list[float] = field(default_factory=list)

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
        marks = self.artist_marks
        lists = (
            self.recent,
            self.recent_artists,
            self.disliked,
            self.skipped,
            self.queue,
            [m[0] for m in marks],
        )
        flat = [s for items in lists for s in items]
        text = _SEP.join(flat)
        flags = 0
        if text.count(_SEP) != max(len(flat) - 1, 0):
            flags, tail = _ORJSON_LISTS, orjson.dumps(list(lists))
        else:
            tail = text.encode()
        ids = b""
        if self.event_ids.size:
            flags |= _EVENT_IDS
            hashes = np.asarray(self.event_ids, dtype="<u8")
            ids = _ID_COUNT.pack(hashes.size) + hashes.tobytes()
        header = _HEADER.pack(
            _MAGIC,
            flags,
            self.h.shape[0],
            self.version,
            self.last_offset,
            self.last_ts,
            self.events,
            self.session_len,
        )
        h = np.asarray(self.h, dtype="<f4").tobytes()
        kinds = self.recent_kinds[-len(self.recent) :] if self.recent else b""
        kinds = bytes(len(self.recent) - len(kinds)) + kinds  # FEEDBACK_INDEX["play"] == 0
        feedback = b"".join(
            (
                kinds,
                bytes(m[1] for m in marks),
                np.asarray([m[2] for m in marks], dtype="<f8").tobytes(),
                _queue_scores(self.queue_scores, len(self.queue)).tobytes(),
            )
        )
        return b"".join((header, h, _COUNTS.pack(*map(len, lists)), ids, feedback, tail))

    @classmethod
    def from_bytes(cls, raw: bytes) -> ListenerState:
        """Inverse of to_bytes (older formats read too); ValueError for anything else."""
        if len(raw) >= _FIRST_HEADER.size and raw[0] == _FIRST_MAGIC:
            return _from_first_format(raw)
        if len(raw) >= _POOL_HEADER.size and raw[0] == _POOL_MAGIC:
            return _from_pool_format(raw)
        if len(raw) < _HEADER.size or raw[0] not in (_MAGIC, _IDS_MAGIC):
            raise ValueError("not a listener state record")
        counts_format = _COUNTS if raw[0] == _MAGIC else _IDS_COUNTS
        _, flags, hidden, version, last_offset, last_ts, events, session_len = _HEADER.unpack_from(
            raw
        )
        at = _HEADER.size
        if len(raw) < at + 4 * hidden + counts_format.size:
            raise ValueError("listener state record is truncated")
        h = np.frombuffer(raw, dtype="<f4", count=hidden, offset=at).astype(np.float32)
        at += 4 * hidden
        counts = counts_format.unpack_from(raw, at)
        at += counts_format.size
        event_ids = np.zeros(0, dtype=np.uint64)
        if flags & _EVENT_IDS:
            if len(raw) < at + _ID_COUNT.size:
                raise ValueError("listener state record is truncated")
            (n_ids,) = _ID_COUNT.unpack_from(raw, at)
            at += _ID_COUNT.size
            if len(raw) < at + 8 * n_ids:
                raise ValueError("listener state record is truncated")
            event_ids = np.frombuffer(raw, dtype="<u8", count=n_ids, offset=at).astype(np.uint64)
            at += 8 * n_ids
        kinds, marks, scores = b"", [], []
        if counts_format is _COUNTS:
            n_recent, n_queue, n_marks = counts[0], counts[4], counts[5]
            end = at + n_recent + 9 * n_marks + 4 * n_queue
            if len(raw) < end:
                raise ValueError("listener state record is truncated")
            kinds = raw[at : at + n_recent]
            mark_kinds = raw[at + n_recent : at + n_recent + n_marks]
            at += n_recent + n_marks
            mark_ts = np.frombuffer(raw, dtype="<f8", count=n_marks, offset=at)
            at += 8 * n_marks
            scores = np.frombuffer(raw, dtype="<f4", count=n_queue, offset=at).tolist()
            at = end
        lists = _id_lists(raw[at:], counts, flags)
        recent, recent_artists, disliked, skipped, queue = lists[:5]
        if counts_format is _COUNTS:
            marks = list(zip(lists[5], mark_kinds, mark_ts.tolist(), strict=True))
        return cls(
            h=h,
            version=version,
            last_offset=last_offset,
            last_ts=last_ts,
            events=events,
            session_len=session_len,
            recent=recent,
            recent_artists=recent_artists,
            disliked=disliked,
            skipped=skipped,
            queue=queue,
            event_ids=event_ids,
            recent_kinds=bytes(kinds),
            artist_marks=marks,
            queue_scores=scores,
        )


def _queue_scores(scores: list[float], n: int) -> np.ndarray:
    """The published scores as n little-endian float32 (NaN where a score is missing)."""
    out = np.full(n, np.nan, dtype="<f4")
    k = min(n, len(scores))
    out[:k] = scores[:k]
    return out


def _id_lists(tail: bytes, counts: tuple[int, ...], flags: int) -> list[list[str]]:
    """The id lists of a record: NUL-joined UTF-8 split by their counts (or an orjson array)."""
    try:
        if flags & _ORJSON_LISTS:
            lists = orjson.loads(tail)
            if [len(items) for items in lists] != list(counts):
                raise ValueError("listener state id lists do not match their counts")
            return lists
        flat = tail.decode().split(_SEP) if sum(counts) else []
    except (UnicodeDecodeError, orjson.JSONDecodeError) as exc:
        raise ValueError(f"listener state id lists are unreadable: {exc}") from exc
    if len(flat) != sum(counts):
        raise ValueError("listener state id lists do not match their counts")
    lists, start = [], 0
    for n in counts:
        lists.append(flat[start : start + n])
        start += n
    return lists


def _from_pool_format(raw: bytes) -> ListenerState:
    """Read the previous format (magic 0xA2): its pool and recent rows were caches, dropped."""
    fields = _POOL_HEADER.unpack_from(raw)
    _, flags, hidden, version, last_offset, last_ts, events, _, _, session_len, pool_n = fields
    at = _POOL_HEADER.size
    if len(raw) < at + 4 * hidden + 4 * pool_n + _IDS_COUNTS.size:
        raise ValueError("listener state record is truncated")
    h = np.frombuffer(raw, dtype="<f4", count=hidden, offset=at).astype(np.float32)
    at += 4 * hidden + 4 * pool_n
    counts = _IDS_COUNTS.unpack_from(raw, at)
    at += _IDS_COUNTS.size + 4 * counts[0]  # the recent rows
    lists = _id_lists(raw[at:], counts, flags)
    return ListenerState(h, version, last_offset, last_ts, events, session_len, *lists)


def _from_first_format(raw: bytes) -> ListenerState:
    """Read the first format (magic 0xA1); its pool of ids is dropped and rebuilt on use."""
    fields = _FIRST_HEADER.unpack_from(raw)
    _, hidden, version, last_offset, last_ts, events, _, session_len = fields
    end = _FIRST_HEADER.size + 4 * hidden
    h = np.frombuffer(raw, dtype="<f4", count=hidden, offset=_FIRST_HEADER.size)
    try:
        recent, recent_artists, disliked, queue, _pool = orjson.loads(raw[end:])
    except (orjson.JSONDecodeError, ValueError) as exc:
        raise ValueError(f"old listener state is unreadable: {exc}") from exc
    return ListenerState(
        h=h.astype(np.float32),
        version=version,
        last_offset=last_offset,
        last_ts=last_ts,
        events=events,
        session_len=session_len,
        recent=recent,
        recent_artists=recent_artists,
        disliked=disliked,
        queue=queue,
    )
