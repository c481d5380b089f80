"""The listener table's store and table class: Faust's memory store over a `PartitionedStore`
(listeners/store.py), so changelog records can be applied a fetched batch at a time and a
standby copy can tell recovery where to resume instead of re-reading a partition from the start.

What differs from Faust's memory store (faust-streaming 0.15), and why:
  - `persisted_offset(tp)` is the offset the store's copy of the partition is complete through
    (Faust's memory store says None: every recovery re-reads every partition from its start);
  - when a recovery ends, the keys of partitions that are neither active nor standby here are
    dropped (Faust's drops every non-active key, standby copies included), so a standby copy
    survives until it is needed;
  - `apply_records` applies raw changelog records of one partition in one call (the bulk
    recovery path, worker/recovery.py); Faust's own per-event path still works and keeps the
    offsets too.
The table is bytes -> bytes with raw serializers: records are stored as they are on the topic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import faust
from faust.stores import memory
from faust.types import TP, EventT, StoreT

from radio_engine.listeners.store import ChangelogRecord, PartitionedStore


class ListenerStore(memory.Store):
    """Faust's memory store whose dicts are a `PartitionedStore`'s (module docstring)."""

    def __post_init__(self) -> None:
        self.partitioned = PartitionedStore()
        self.data = self.partitioned.data
        self._key_partition = self.partitioned.key_partition  # read by worker/app.py too

    def apply_records(self, partition: int, records: Sequence[ChangelogRecord]) -> int:
        """Apply one partition's changelog records in order (already filtered to the unseen
        ones); returns how many were applied."""
        return self.partitioned.apply(partition, records)

    def apply_changelog_batch(
        self,
        batch: Iterable[EventT],
        to_key: Callable[[Any], Any],
        to_value: Callable[[Any], Any],
    ) -> None:
        """Faust's per-event recovery path: the same apply, offsets kept."""
        for event in batch:
            message = event.message
            self.partitioned.apply(message.partition, [message])

    def persisted_offset(self, tp: TP) -> int | None:
        """The changelog offset this store's copy of `tp` is complete through (None: unknown,
        recovery reads the partition from its start)."""
        return self.partitioned.offset(tp.partition)

    async def on_recovery_completed(self, active_tps: set[TP], standby_tps: set[TP]) -> None:
        """Keep the keys of active and standby partitions; drop the rest (no longer ours)."""
        self.partitioned.retain({tp.partition for tp in active_tps | standby_tps})


class ListenerTable(faust.Table):
    """A Faust table kept in a `ListenerStore`."""

    def _new_store(self) -> StoreT:
        return ListenerStore(
            "memory://",
            self.app,
            self,
            table_name=self.name,
            key_type=self.key_type,
            key_serializer=self.key_serializer,
            value_serializer=self.value_serializer,
            value_type=self.value_type,
            loop=self.loop,
            options=self.options,
        )
