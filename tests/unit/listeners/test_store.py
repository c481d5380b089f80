"""The listener table's partitioned store: changelog records applied in order, per-partition
offsets, and what a partition that is no longer ours leaves behind (nothing)."""

from __future__ import annotations

from typing import NamedTuple

import pytest

from radio_engine.listeners.store import PartitionedStore, unseen


class Record(NamedTuple):
    offset: int
    key: bytes | None
    value: bytes | None


def test_records_apply_in_order_and_a_tombstone_deletes() -> None:
    store = PartitionedStore()
    applied = store.apply(
        2, [Record(0, b"a", b"a1"), Record(1, b"b", b"b1"), Record(2, b"a", b"a2")]
    )
    assert applied == 3 and store.data == {b"a": b"a2", b"b": b"b1"}
    assert store.key_partition == {b"a": 2, b"b": 2} and store.offset(2) == 2
    store.apply(2, [Record(5, b"b", None)])  # a gap (compaction) then a tombstone
    assert store.data == {b"a": b"a2"} and store.key_partition == {b"a": 2}
    assert store.offset(2) == 5 and store.offset(0) is None


def test_nothing_applied_leaves_the_offset_alone() -> None:
    store = PartitionedStore()
    store.apply(1, [Record(7, b"k", b"v")])
    assert store.apply(1, []) == 0 and store.offset(1) == 7


def test_a_keyless_record_is_refused() -> None:
    with pytest.raises(TypeError, match="offset 4"):
        PartitionedStore().apply(0, [Record(4, None, b"v")])


def test_unseen_skips_what_recovery_already_reached() -> None:
    batch = [Record(o, b"k", b"v") for o in (3, 4, 6, 7)]
    assert unseen(batch, None) is batch and unseen(batch, 2) is batch
    assert [r.offset for r in unseen(batch, 4)] == [6, 7]
    assert [r.offset for r in unseen(batch, 5)] == [6, 7]
    assert unseen(batch, 7) == []


def test_retain_forgets_the_keys_and_offsets_of_other_partitions() -> None:
    store = PartitionedStore()
    for p in range(3):
        store.apply(p, [Record(10 + p, b"k%d" % p, b"v")])
    store.data[b"own"] = b"w"  # a write of the worker itself, to partition 1
    store.key_partition[b"own"] = 1
    assert store.retain({1}) == 2
    assert store.data == {b"k1": b"v", b"own": b"w"}
    assert store.offsets == {1: 11} and set(store.key_partition) == {b"k1", b"own"}
