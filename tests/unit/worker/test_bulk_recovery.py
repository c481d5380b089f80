"""Bulk changelog recovery without a broker: fetched changelog batches go through Faust's own
recovery bookkeeping (offsets, highwaters, the end-of-recovery signal, standbys), and the store
tells the next recovery where a standby copy stands (the real restart and takeover are tested
on the real broker, tests/integration/test_recovery.py)."""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple

import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from radio_engine.worker import metrics
from radio_engine.worker.recovery import apply_fetched, resume_offsets
from radio_engine.worker.store import ListenerStore, ListenerTable
from radio_engine.worker.transport import BulkConsumer, RadioApp

CHANGELOG = "t-recovery-listeners-changelog"
ACTIVE, STANDBY, FOREIGN = TP(CHANGELOG, 0), TP(CHANGELOG, 1), TP(CHANGELOG, 2)


class Record(NamedTuple):
    """The fields of an aiokafka ConsumerRecord the bulk path reads."""

    offset: int
    key: bytes
    value: bytes | None


def records(first: int, last: int, key: str = "L") -> list[Record]:
    """One record per offset; the key cycles over three listeners, the value names the offset."""
    return [Record(o, f"{key}{o % 3}".encode(), b"v%d" % o) for o in range(first, last + 1)]


@pytest.fixture
def app() -> RadioApp:
    return RadioApp("t-recovery", broker="radio://127.0.0.1:9", store="memory://")


@pytest.fixture
def table(app: RadioApp) -> ListenerTable:
    return app.bulk_table("listeners", default=None, partitions=3)


def in_recovery(app: RadioApp, table: ListenerTable, active_hw: int, standby_hw: int) -> Any:
    """Faust's recovery as `_restart_recovery` leaves it while it waits for the actives: one
    active and one standby changelog partition, offsets from the store, highwaters known."""
    recovery = app.tables.recovery
    recovery.add_active(table, ACTIVE)
    recovery.add_standby(table, STANDBY)
    for offsets in (recovery.active_offsets, recovery.standby_offsets):
        for tp in list(offsets):
            if offsets[tp] is None:
                offsets[tp] = -1  # _build_offsets: nothing read yet
    recovery.active_highwaters[ACTIVE] = active_hw
    recovery.standby_highwaters[STANDBY] = standby_hw
    recovery._set_recovery_started()
    return recovery


def applied_total(copy: str) -> float:
    return (
        metrics.REGISTRY.get_sample_value("radio_changelog_records_applied_total", {"copy": copy})
        or 0.0
    )


def test_the_registered_table_keeps_its_records_in_a_listener_store(
    app: RadioApp, table: ListenerTable
) -> None:
    assert isinstance(table.data, ListenerStore)
    assert app.bulk_tables == {CHANGELOG: table}
    with pytest.raises(ValueError, match="bytes"):
        app.bulk_table("other", key_type=str)


def test_recovery_ends_when_the_last_batch_reaches_the_highwater(
    app: RadioApp, table: ListenerTable
) -> None:
    recovery = in_recovery(app, table, active_hw=9, standby_hw=5)
    before = applied_total("active")
    first = apply_fetched(app, app.bulk_tables, {ACTIVE: records(0, 4)})
    assert (first.active, first.ended_recovery) == (5, False)
    assert recovery.active_offsets[ACTIVE] == 4 and recovery.in_recovery
    assert not recovery.signal_recovery_end.is_set()
    # a seek back repeats 3 and 4: skipped; the rest reaches the highwater
    last = apply_fetched(app, app.bulk_tables, {ACTIVE: records(3, 9)})
    assert (last.active, last.ended_recovery) == (5, True)
    assert recovery.active_offsets[ACTIVE] == 9
    assert not recovery.in_recovery and not app.in_recovery
    assert recovery.signal_recovery_end.is_set()  # _restart_recovery goes on from here
    # the newest record of each key won, in offset order
    assert dict(table.data.partitioned.data) == {b"L0": b"v9", b"L1": b"v7", b"L2": b"v8"}
    assert table.data.persisted_offset(ACTIVE) == 9
    assert applied_total("active") - before == 10


def test_standby_copies_follow_their_own_offsets_and_become_ready(
    app: RadioApp, table: ListenerTable
) -> None:
    recovery = in_recovery(app, table, active_hw=-1, standby_hw=5)
    recovery.in_recovery = False  # actives done (empty): standby partitions are read now
    assert not app.tables.standbys_ready
    got = apply_fetched(app, app.bulk_tables, {STANDBY: records(0, 2, key="S")})
    assert (got.standby, got.active, got.ended_recovery) == (3, 0, False)
    assert recovery.standby_offsets[STANDBY] == 2 and not app.tables.standbys_ready
    apply_fetched(app, app.bulk_tables, {STANDBY: records(3, 5, key="S")})
    assert recovery.standby_offsets[STANDBY] == 5 and app.tables.standbys_ready
    assert table.data.partitioned.key_partition[b"S0"] == 1


def test_records_of_a_partition_neither_active_nor_standby_are_not_applied(
    app: RadioApp, table: ListenerTable
) -> None:
    in_recovery(app, table, active_hw=3, standby_hw=-1)
    got = apply_fetched(app, app.bulk_tables, {FOREIGN: records(0, 3, key="F")})
    assert (got.active, got.standby) == (0, 0) and len(table.data) == 0


def test_a_standby_copy_is_where_the_takeover_resumes(app: RadioApp, table: ListenerTable) -> None:
    """The copy survives the end of a recovery, and when its partition becomes active here
    Faust's recovery starts from the copy's offset instead of the partition's start."""
    recovery = in_recovery(app, table, active_hw=2, standby_hw=40)
    apply_fetched(app, app.bulk_tables, {ACTIVE: records(0, 2)})
    apply_fetched(app, app.bulk_tables, {STANDBY: records(0, 40, key="S")})
    asyncio.run(table.data.on_recovery_completed({ACTIVE}, {STANDBY}))
    assert {b"S0", b"L0"} <= set(table.data.partitioned.data)
    # the next assignment: the standby partition is now active here, the old active is gone
    recovery.revoke(ACTIVE)
    recovery.add_active(table, STANDBY)
    assert recovery.active_offsets[STANDBY] == 40  # from ListenerStore.persisted_offset
    asyncio.run(table.data.on_recovery_completed({STANDBY}, set()))
    assert set(table.data.partitioned.data) == {b"S0", b"S1", b"S2"}
    assert table.data.persisted_offset(ACTIVE) is None  # forgotten with its keys


def test_faust_s_own_changelog_path_keeps_the_offsets_too(table: ListenerTable) -> None:
    class Message(NamedTuple):
        partition: int
        offset: int
        key: bytes
        value: bytes

    class Event(NamedTuple):
        message: Message

    table.apply_changelog_batch([Event(Message(1, 7, b"k", b"v"))])
    assert table.data[b"k"] == b"v" and table.data.persisted_offset(STANDBY) == 7


def test_the_transport_applies_changelog_batches_only_while_the_flow_runs(
    app: RadioApp, table: ListenerTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetched = {ACTIVE: records(0, 5), TP("other", 0): records(0, 1)}

    async def fetch(self: Any, active: Any, timeout: float) -> dict[TP, list[Record]]:
        return fetched

    monkeypatch.setattr(faust_aiokafka.Consumer, "_getmany", fetch)
    recovery = in_recovery(app, table, active_hw=5, standby_hw=-1)
    consumer = app.consumer
    assert isinstance(consumer, BulkConsumer)
    seeks: list[tuple[TP, int]] = []

    async def seek(partition: TP, offset: int) -> None:
        seeks.append((partition, offset))

    monkeypatch.setattr(consumer, "seek", seek)
    other = {TP("other", 0): fetched[TP("other", 0)]}  # left to Faust's own path
    # a rebalance (flow suspended): dropped, unapplied, and the partition sought back to where
    # recovery reads next (it may have sought there already, before this fetch returned)
    assert asyncio.run(consumer._getmany(None, 1.0)) == other
    assert len(table.data) == 0 and recovery.active_offsets[ACTIVE] == -1
    assert seeks == [(ACTIVE, 0)]
    app.flow_control.resume()
    app.rebalancing = False
    assert asyncio.run(consumer._getmany(None, 1.0)) == other
    assert len(table.data) == 3 and recovery.active_offsets[ACTIVE] == 5
    assert not recovery.in_recovery and consumer._read_offset[ACTIVE] == 5
    assert seeks == [(ACTIVE, 0)]  # no seek while the flow runs


def test_a_dropped_batch_rewinds_to_just_after_what_recovery_reached(
    app: RadioApp, table: ListenerTable
) -> None:
    recovery = in_recovery(app, table, active_hw=30, standby_hw=30)
    recovery.active_offsets[ACTIVE], recovery.standby_offsets[STANDBY] = 17, 4
    tps = [ACTIVE, STANDBY, FOREIGN]
    assert resume_offsets(app, tps) == {ACTIVE: 18, STANDBY: 5}  # FOREIGN: not ours
