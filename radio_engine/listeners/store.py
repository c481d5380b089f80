"""The listener table's contents on one worker: state bytes by key, each key's partition, and
for each partition the changelog offset its keys have been read up to.

Kept as plain dicts (the table's store, worker/store.py, is a thin Faust wrapper around this)
so that recovery can apply a whole fetched batch of changelog records in one call, and so that
a partition read as a standby copy can say where a later recovery of it may resume: every
key of partition p reflects the changelog through `offsets[p]`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol


class ChangelogRecord(Protocol):
    """The fields of a changelog record (an aiokafka ConsumerRecord) applied here."""

    @property
    def offset(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...


def unseen(records: Sequence[ChangelogRecord], seen: int | None) -> Sequence[ChangelogRecord]:
    """The records after offset `seen` (all of them when None), in order: a fetch can repeat
    records already applied (a seek back to where recovery resumes)."""
    if seen is None or not records or records[0].offset > seen:
        return records
    return [r for r in records if r.offset > seen]


class PartitionedStore:
    """Key -> value bytes, with the partition of every key and the offset each partition has
    been applied through (absent: nothing known to be complete for it)."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        #: the partition each key came from (changelog records, or the worker's own writes)
        self.key_partition: dict[bytes, int] = {}
        #: partition -> the last changelog offset applied to its keys, in order
        self.offsets: dict[int, int] = {}

    def apply(self, partition: int, records: Iterable[ChangelogRecord]) -> int:
        """Apply changelog records of one partition in offset order (a None value deletes the
        key); returns how many were applied. `records` must follow on from what was applied
        before (the caller filters with `unseen`)."""
        data, key_partition = self.data, self.key_partition
        last, count = None, 0
        for record in records:
            key = record.key
            if key is None:  # a keyless record cannot be a table entry; Faust refuses it too
                raise TypeError(f"changelog record at offset {record.offset} has no key")
            if record.value is None:
                data.pop(key, None)
                key_partition.pop(key, None)
            else:
                data[key] = record.value
                key_partition[key] = partition
            last, count = record.offset, count + 1
        if last is not None:
            self.offsets[partition] = last
        return count

    def offset(self, partition: int) -> int | None:
        """The changelog offset partition `partition` is complete through, if known."""
        return self.offsets.get(partition)

    def retain(self, partitions: set[int]) -> int:
        """Forget every key (and the offset) of partitions not in `partitions`: they are
        neither served nor copied here any more. Returns how many keys were dropped."""
        dropped = [k for k, p in self.key_partition.items() if p not in partitions]
        for key in dropped:
            self.data.pop(key, None)
            del self.key_partition[key]
        for partition in [p for p in self.offsets if p not in partitions]:
            del self.offsets[partition]
        return len(dropped)
