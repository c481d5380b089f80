"""A listener's state: GRU hidden state, short history, queue and candidate pool, as compact bytes.

The bytes are the Faust table value (with its Kafka changelog), so they are kept small: a fixed
header, the float32 hidden state, then the id lists as one orjson array.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np
import orjson

_MAGIC = 0xA1
_HEADER = struct.Struct(
    "<BHIqdIII"
)  # _, hidden, version, last_offset, last_ts, events, pool_epoch, session_len


@dataclass
class ListenerState:
    """Everything the engine remembers about one listener."""

    h: np.ndarray
    version: int = 0
    last_offset: int = -1
    last_ts: float = 0.0
    events: int = 0
    pool_epoch: int = 0
    session_len: int = 0
    recent: list[str] = field(default_factory=list)
    recent_artists: list[str] = field(default_factory=list)
    disliked: list[str] = field(default_factory=list)
    queue: list[str] = field(default_factory=list)
    pool: list[str] = field(default_factory=list)

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
        header = _HEADER.pack(
            _MAGIC,
            self.h.shape[0],
            self.version,
            self.last_offset,
            self.last_ts,
            self.events,
            self.pool_epoch,
            self.session_len,
        )
        lists = orjson.dumps(
            [self.recent, self.recent_artists, self.disliked, self.queue, self.pool]
        )
        return header + self.h.astype(np.float32, copy=False).tobytes() + lists

    @classmethod
    def from_bytes(cls, raw: bytes) -> ListenerState:
        """Inverse of to_bytes; raises ValueError on bytes that are not a listener state."""
        if len(raw) < _HEADER.size or raw[0] != _MAGIC:
            raise ValueError("not a listener state record")
        _, hidden, version, last_offset, last_ts, events, pool_epoch, session_len = (
            _HEADER.unpack_from(raw)
        )
        end = _HEADER.size + 4 * hidden
        h = np.frombuffer(raw, dtype=np.float32, count=hidden, offset=_HEADER.size).copy()
        recent, recent_artists, disliked, queue, pool = orjson.loads(raw[end:])
        return cls(
            h=h,
            version=version,
            last_offset=last_offset,
            last_ts=last_ts,
            events=events,
            pool_epoch=pool_epoch,
            session_len=session_len,
            recent=recent,
            recent_artists=recent_artists,
            disliked=disliked,
            queue=queue,
            pool=pool,
        )
