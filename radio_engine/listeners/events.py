"""A micro-batch of valid listen events as columns: one array or list per field, arrival order.

Columns, not one object per event: the GRU inputs, the duplicate check and the history update
are computed over whole arrays, and building them costs one append per field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from radio_engine.model.inputs import FEEDBACK_INDEX


@dataclass(frozen=True)
class ListenEvent:
    """One decoded, valid listen event and where it came from (tests and small callers)."""

    listener_id: str
    track_id: str
    event: str
    ts: float
    artist_id: str = ""
    dwell_ratio: float = float("nan")
    event_id: str = ""
    partition: int = 0
    offset: int = 0
    kafka_ts: float = 0.0


@dataclass
class ListenEvents:
    """Valid listen events of one batch, column by column (all of length n)."""

    listener_ids: list[str] = field(default_factory=list)
    track_ids: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    artist_ids: list[str] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    ts: list[float] = field(default_factory=list)
    dwell: list[float] = field(default_factory=list)
    partitions: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    kafka_ts: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.listener_ids)

    def append(self, e: ListenEvent) -> None:
        """Add one event at the end."""
        self.listener_ids.append(e.listener_id)
        self.track_ids.append(e.track_id)
        self.kinds.append(e.event)
        self.artist_ids.append(e.artist_id)
        self.event_ids.append(e.event_id)
        self.ts.append(e.ts)
        self.dwell.append(e.dwell_ratio)
        self.partitions.append(e.partition)
        self.offsets.append(e.offset)
        self.kafka_ts.append(e.kafka_ts)

    @classmethod
    def of(cls, events: Sequence[ListenEvent]) -> ListenEvents:
        """Columns from a list of events."""
        out = cls()
        for e in events:
            out.append(e)
        return out

    def feedback(self) -> np.ndarray:
        """Feedback indices (model.inputs.FEEDBACK_TYPES order) [n] int64."""
        return np.fromiter(map(FEEDBACK_INDEX.__getitem__, self.kinds), np.int64, len(self))
