"""The bulk transport without a broker: which records reach the handler, and what gets acked
into Faust's own bookkeeping (the commit that follows is tested on the real broker)."""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple

import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from radio_engine.listens.decode import InMessage
from radio_engine.worker.transport import BulkConsumer, RadioApp

LISTENS, OTHER = "listens", "other"


class Record(NamedTuple):
    """The fields of an aiokafka ConsumerRecord the transport reads."""

    offset: int
    key: bytes
    value: bytes
    timestamp: int = 1_700_000_000_000


def records(first: int, last: int) -> list[Record]:
    return [Record(o, b"k%d" % o, b"v%d" % o) for o in range(first, last + 1)]


@pytest.fixture
def app() -> RadioApp:
    return RadioApp("t-transport", broker="radio://127.0.0.1:9")


def consumer_of(app: RadioApp) -> BulkConsumer:
    consumer = app.consumer
    assert isinstance(consumer, BulkConsumer)  # the radio:// scheme chose this transport
    return consumer


def test_bulk_acks_let_the_commit_move_past_every_fetched_record(app: RadioApp) -> None:
    c, tp = consumer_of(app), TP(LISTENS, 0)

    async def go() -> None:
        await c.ack_fetched(tp, 0, 99)
        await c.ack_fetched(tp, 100, 149)
        await c.ack_fetched(tp, 100, 149)  # a redelivery is not counted twice

    asyncio.run(go())
    assert c._n_acked == 150
    assert c._new_offset(tp) == 150


def test_records_deleted_before_a_fetch_do_not_hold_the_commit_back(app: RadioApp) -> None:
    c, tp = consumer_of(app), TP(LISTENS, 1)
    c._committed_offset[tp] = 53  # committed before a restart; 53..128 then deleted

    asyncio.run(c.ack_fetched(tp, 129, 129))
    assert c._new_offset(tp) == 130


def fetching(
    app: RadioApp, monkeypatch: pytest.MonkeyPatch, fetched: dict[TP, list[Record]]
) -> list[list[InMessage]]:
    """Every fetch returns `fetched`; a bulk agent on LISTENS records what it is handed."""

    async def fetch(self: Any, active: Any, timeout: float) -> dict[TP, list[Record]]:
        return fetched

    async def earliest(self: Any, *tps: TP) -> dict[TP, int]:
        return {t: 0 for t in tps}  # nothing deleted by retention (a test may say otherwise)

    monkeypatch.setattr(faust_aiokafka.Consumer, "_getmany", fetch)
    monkeypatch.setattr(faust_aiokafka.Consumer, "earliest_offsets", earliest)
    seen: list[list[InMessage]] = []

    @app.bulk_agent(app.topic(LISTENS))
    async def handle(batch: list[InMessage]) -> None:
        seen.append(batch)

    return seen


def test_hot_records_go_to_the_handler_whole_and_the_rest_to_faust(
    app: RadioApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetched = {
        TP(LISTENS, 0): records(10, 12),
        TP(OTHER, 0): records(0, 1),
        TP(LISTENS, 3): records(5, 5),
    }
    seen = fetching(app, monkeypatch, fetched)
    c = consumer_of(app)
    c._read_offset[TP(LISTENS, 0)], c._read_offset[TP(LISTENS, 3)] = 9, 4  # read up to there
    app.flow_control.resume()
    rest = asyncio.run(c._getmany(None, 1.0))
    assert rest == {TP(OTHER, 0): fetched[TP(OTHER, 0)]}
    [batch] = seen
    assert [(r.partition, r.offset, r.key) for r in batch] == [
        (0, 10, b"k10"),
        (0, 11, b"k11"),
        (0, 12, b"k12"),
        (3, 5, b"k5"),
    ]
    assert batch[0].timestamp == 1_700_000_000.0  # seconds
    assert c._new_offset(TP(LISTENS, 0)) == 13 and c._new_offset(TP(LISTENS, 3)) == 6
    assert c._new_offset(TP(OTHER, 0)) is None  # Faust acks those itself, message by message


def test_while_the_flow_is_suspended_hot_records_are_dropped_unacked(
    app: RadioApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = fetching(app, monkeypatch, {TP(LISTENS, 0): records(0, 4)})
    c = consumer_of(app)
    assert not app.flow_control.is_active()  # until table recovery is done
    assert asyncio.run(c._getmany(None, 1.0)) == {}
    assert seen == [] and c._new_offset(TP(LISTENS, 0)) is None  # Faust seeks back first
    app.flow_control.resume()
    asyncio.run(c._getmany(None, 1.0))
    assert len(seen) == 1 and c._new_offset(TP(LISTENS, 0)) == 5


def test_a_fetch_begun_before_a_rebalance_and_returned_after_it_is_processed(
    app: RadioApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fetch started in generation 1; by its return generation 2 was assigned, Faust had
    sought to the committed offsets and resumed the flow: its records are the ones after that
    seek (aiokafka discards anything fetched before it), so they are processed; dropping them
    would leave them unread until more records arrive on the partition."""
    tp = TP(LISTENS, 1)
    seen = fetching(app, monkeypatch, {tp: records(447, 464)})
    app.consumer_generation_id = 1
    fetch = faust_aiokafka.Consumer._getmany

    async def across_a_rebalance(self: Any, active: Any, timeout: float) -> Any:
        app.consumer_generation_id = 2
        return await fetch(self, active, timeout)

    monkeypatch.setattr(faust_aiokafka.Consumer, "_getmany", across_a_rebalance)
    c = consumer_of(app)
    c._read_offset[tp] = 446
    app.flow_control.resume()
    asyncio.run(c._getmany(None, 1.0))
    assert [r.offset for r in seen[0]] == list(range(447, 465)) and c._new_offset(tp) == 465


def test_a_fetch_past_records_never_processed_seeks_back_instead_of_losing_them(
    app: RadioApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read up to 20, fetched from 31 (records dropped during a rebalance whose seek back
    failed, still on the broker): the batch is dropped unacked and sought back to 21."""
    tp = TP(LISTENS, 2)
    seen = fetching(app, monkeypatch, {tp: records(31, 35)})
    c = consumer_of(app)
    c._read_offset[tp] = 20
    seeks: list[tuple[TP, int]] = []

    async def earliest(*tps: TP) -> dict[TP, int]:
        return {t: 0 for t in tps}

    async def seek(partition: TP, offset: int) -> None:
        seeks.append((partition, offset))

    monkeypatch.setattr(c, "earliest_offsets", earliest)
    monkeypatch.setattr(c, "seek", seek)
    app.flow_control.resume()
    asyncio.run(c._getmany(None, 1.0))
    assert seen == [] and seeks == [(tp, 21)] and c._new_offset(tp) is None


def test_a_first_fetch_past_the_start_of_a_partition_never_read_seeks_back(
    app: RadioApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing read or committed of the partition yet, and the fetch starts at 198: the batch
    before it (begun before a rebalance, returned after Faust's seek) was dropped, so 0..197
    would be lost; it is dropped too and the partition sought back to its start."""
    tp = TP(LISTENS, 3)
    seen = fetching(app, monkeypatch, {tp: records(198, 230)})
    c = consumer_of(app)
    seeks: list[tuple[TP, int]] = []

    async def seek(partition: TP, offset: int) -> None:
        seeks.append((partition, offset))

    monkeypatch.setattr(c, "seek", seek)
    app.flow_control.resume()
    asyncio.run(c._getmany(None, 1.0))
    assert seen == [] and seeks == [(tp, 0)] and c._new_offset(tp) is None


def test_a_hole_retention_made_is_processed_and_kept_as_a_gap(
    app: RadioApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    tp = TP(LISTENS, 2)
    seen = fetching(app, monkeypatch, {tp: records(31, 35)})
    c = consumer_of(app)
    c._read_offset[tp] = c._committed_offset[tp] = 20

    async def earliest(*tps: TP) -> dict[TP, int]:
        return {t: 31 for t in tps}  # 21..30 deleted by retention

    monkeypatch.setattr(c, "earliest_offsets", earliest)
    app.flow_control.resume()
    asyncio.run(c._getmany(None, 1.0))
    assert [r.offset for r in seen[0]] == [31, 32, 33, 34, 35] and c._new_offset(tp) == 36


def test_a_commit_in_flight_is_not_taken_for_a_hole(
    app: RadioApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a commit is in flight Faust has taken the acked offsets out of its index but not
    yet moved the committed offset: the next batch still follows what was read."""
    tp = TP(LISTENS, 2)
    seen = fetching(app, monkeypatch, {tp: records(78, 80)})
    c = consumer_of(app)
    c._committed_offset[tp], c._read_offset[tp] = 27, 77

    async def earliest(*tps: TP) -> dict[TP, int]:
        raise AssertionError("no hole: the broker need not be asked")

    monkeypatch.setattr(c, "earliest_offsets", earliest)
    app.flow_control.resume()
    asyncio.run(c._getmany(None, 1.0))
    assert [r.offset for r in seen[0]] == [78, 79, 80]


def test_the_fetch_wait_is_the_apps_setting() -> None:
    app = RadioApp("t-wait", broker="radio://127.0.0.1:9", fetch_max_wait_ms=10)
    thread = consumer_of(app)._new_consumer_thread()

    async def build() -> Any:  # aiokafka's consumer wants a running loop
        return thread._create_worker_consumer(app.transport)

    assert asyncio.run(build())._fetch_max_wait_ms == 10
