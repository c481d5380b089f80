"""A Faust transport that hands whole fetched batches of one hot topic to a batch handler.

Faust delivers every message alone (one `wait_first` per message in its consumer's drain loop,
~180 us of framework CPU per event on a 2-core machine): the ceiling of the listen path. This
transport keeps everything Faust gives (consumer group, co-partitioned table assignment,
changelog recovery, commit with the producer flushed first, rebalancing) and changes two things:
records of a topic registered with `RadioApp.bulk_agent` are taken out of each fetch and handed
to that agent's handler as one list, and records of the changelog of a table made with
`RadioApp.bulk_table` are taken out of each fetch and applied to its store a partition's batch
at a time, through Faust's own recovery bookkeeping (worker/recovery.py); every other topic
stays on Faust's own path. It is registered the way Faust supports custom transports (the
`faust.transports` entry point, scheme `radio://`), not by patching Faust.

The bulk path of one fetch, in order (the order is the guarantee):
  1. Faust's consumer fetches records for its active partitions (paused ones, e.g. during
     table recovery, are not fetched);
  2. the hot topic's records are removed from the fetch; if the app's flow is suspended when
     the fetch returns (startup until table recovery is done, a rebalance), they are dropped
     unprocessed: Faust seeks back to the committed offsets before it resumes the flow, and
     they come again (as its own per-message path drops its queued messages);
     a bulk table's changelog records are removed too and, under the same condition, applied
     to the table's store first (worker/recovery.py); dropped, their partitions are sought
     back to where recovery resumes reading; during recovery the listens partitions are
     paused, so a fetch carrying both holds standby copies of other workers' partitions;
  3. the handler runs over all of them; it writes state and enqueues its output records with
     the producer before it returns;
  4. only then are their offsets acked into Faust's own bookkeeping, in bulk (a span deleted
     before the fetch goes to Faust's gap bookkeeping, as its own path does); Faust's commit
     flushes the producer before it commits offsets, so a committed offset never precedes the
     output it caused. A crash before the commit replays the records (at least once).

Tested with faust-streaming 0.15 and aiokafka 0.14 (pinned in pyproject.toml): the subclasses
below use Faust's consumer bookkeeping (`_acked`, `_acked_index`, `_committed_offset`,
`_read_offset`, `_add_gap`) as its own `ack` and drain loop do.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import faust
from aiokafka.errors import IllegalStateError
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from radio_engine.listens.decode import InMessage
from radio_engine.worker.recovery import apply_fetched, resume_offsets
from radio_engine.worker.store import ListenerTable

log = logging.getLogger(__name__)

#: URL scheme of this transport (see the `faust.transports` entry point in pyproject.toml)
SCHEME = "radio"
#: longest the fetch loop waits, after its fetch ended table recovery, for the streams to resume
RESUME_WAIT_S = 1.0


BatchHandler = Callable[[list[InMessage]], Awaitable[None]]


class RadioApp(faust.App):
    """A Faust app whose `bulk_agent` topics are consumed a fetched batch at a time."""

    def __init__(self, *args: Any, fetch_max_wait_ms: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bulk_handlers: dict[str, BatchHandler] = {}
        #: changelog topic -> table whose changelog records are applied in bulk
        self.bulk_tables: dict[str, ListenerTable] = {}
        #: longest time the broker may hold a fetch (None: Faust's fixed 1500 ms)
        self.fetch_max_wait_ms = fetch_max_wait_ms

    def bulk_table(self, name: str, **kwargs: Any) -> ListenerTable:
        """A bytes -> bytes table (raw serializers) whose changelog is read in bulk during
        recovery and standby replication (worker/recovery.py); `kwargs` as for `app.Table`."""
        for option in ("key_type", "value_type"):
            if kwargs.setdefault(option, bytes) is not bytes:
                raise ValueError(f"a bulk table stores the records' bytes: {option} must be bytes")
        if kwargs.get("on_changelog_event") is not None:
            raise ValueError("a bulk table applies records in bulk: no on_changelog_event")
        table = ListenerTable(self, name=name, beacon=self.tables.beacon, **kwargs)
        self.tables.add(table)
        self.bulk_tables[table.changelog_topic.get_topic_name()] = table
        return table

    def bulk_agent(self, topic: faust.TopicT) -> Callable[[BatchHandler], BatchHandler]:
        """Register `handler(records)` for every fetched batch of `topic` (one topic name).

        The topic joins the consumer's subscription like an agent's would, so the assignor
        co-partitions tables with it. Needs the `radio://` broker scheme (this transport).
        """
        (name,) = topic.topics

        def register(handler: BatchHandler) -> BatchHandler:
            self.bulk_handlers[name] = handler
            self.topics.add(topic)
            return handler

        return register


class BulkConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's aiokafka consumer thread with a configurable fetch wait.

    Faust fixes `fetch_max_wait_ms` at 1500: while one partition's data is buffered, aiokafka's
    next fetch asks only the idle partitions and the broker holds it that long, so a busy
    partition can wait 1.5 s for nothing. The wait comes from the app's `fetch_max_wait_ms`.
    """

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        wait_ms = getattr(self.app, "fetch_max_wait_ms", None)
        if wait_ms is not None:
            consumer._fetch_max_wait_ms = int(wait_ms)  # read by AIOKafkaConsumer.start()
        return consumer


class BulkConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer; registered hot topics bypass per-message delivery."""

    def _new_consumer_thread(self) -> BulkConsumerThread:
        return BulkConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _getmany(self, active_partitions: set[TP] | None, timeout: float) -> Any:
        """Fetch as Faust does, apply bulk tables' changelog records, run the hot topics'
        records through their handlers, return the rest to Faust's per-message path (steps 1-4
        of the module docstring)."""
        records = await super()._getmany(active_partitions, timeout)
        handlers: Mapping[str, BatchHandler] = getattr(self.app, "bulk_handlers", {})
        tables: Mapping[str, Any] = getattr(self.app, "bulk_tables", {})
        if not records or not (handlers or tables):
            return records
        hot: dict[str, list[tuple[TP, Sequence[Any]]]] = {}
        changelogs: dict[TP, Sequence[Any]] = {}
        rest = {}
        for tp, batch in records.items():
            if tp.topic in handlers:
                hot.setdefault(tp.topic, []).append((tp, batch))
            elif tp.topic in tables:
                changelogs[tp] = batch
            else:
                rest[tp] = batch
        if not self._may_process():
            await self._rewind(resume_offsets(self.app, changelogs))
            return rest
        if changelogs:
            applied = apply_fetched(self.app, tables, changelogs)
            for tp, batch in changelogs.items():
                if batch:
                    self._read_offset[tp] = batch[-1].offset  # as Faust's drain loop does
            if applied.ended_recovery:
                await self._await_rebalance_end(self.app.consumer_generation_id)
        if not hot:
            return rest
        for topic, fetched in hot.items():
            parts = [(tp, batch) for tp, batch in fetched if await self._follows_on(tp, batch)]
            if not parts:
                continue
            await handlers[topic]([_hot_record(tp, r) for tp, batch in parts for r in batch])
            for tp, batch in parts:
                await self.ack_fetched(tp, batch[0].offset, batch[-1].offset)
        return rest

    async def _follows_on(self, tp: TP, batch: Sequence[Any]) -> bool:
        """Whether a fetched batch starts right after what this worker last read of `tp`.

        Records fetched while the flow is suspended (a rebalance) are dropped, and Faust seeks
        every partition back to its committed offset before resuming; but that seek runs for
        all partitions at once and stops at the first one no longer assigned, so a partition
        this worker kept can go on past the dropped span. Processing such a batch would lose
        the span (the ack would take it for a gap): instead the partition is sought back to
        just after the last record read and the batch dropped, unacked, to come again. The
        same holds for a partition nothing was read or committed of yet (no read offset): a
        batch dropped there leaves the next fetch past it, so such a batch must start at the
        partition's earliest offset. A hole that retention made (its records are gone) is let
        through; `ack_fetched` records it.
        """
        read = self._read_offset[tp]  # the last offset read here, or the position after a seek
        first = batch[0].offset
        if read is not None and first <= read + 1:
            return True
        earliest = (await self.earliest_offsets(tp)).get(tp)
        if earliest is not None and earliest >= first:
            return True
        resume = read + 1 if read is not None else (earliest or 0)
        log.warning(
            "%s: fetch starts at offset %d but %d..%d were never read here: seeking back",
            tp,
            first,
            resume,
            first - 1,
        )
        try:
            await self.seek(tp, resume)
        except IllegalStateError as exc:  # unassigned meanwhile: its new owner reads it
            log.warning("%s: seek back failed (%r); dropping the batch", tp, exc)
        return False

    async def _rewind(self, offsets: Mapping[TP, int]) -> None:
        """Seek partitions back to where dropped records must be read again."""
        for tp, offset in offsets.items():
            try:
                await self.seek(tp, offset)
            except IllegalStateError as exc:  # unassigned meanwhile: not ours to read
                log.debug("%s: rewind to %d failed (%r)", tp, offset, exc)

    async def _await_rebalance_end(self, generation: int) -> None:
        """After this fetch ended table recovery, hold the fetch loop (at most RESUME_WAIT_S)
        until Faust has resumed the stream partitions: a fetch loop that finds no active
        partition in between (changelogs paused, streams not yet resumed) sleeps a whole
        second before it looks again, and the first listens wait for it."""
        deadline = time.monotonic() + RESUME_WAIT_S
        while (
            self.app.rebalancing
            and self.app.consumer_generation_id == generation
            and time.monotonic() < deadline
        ):
            await asyncio.sleep(0.005)

    def _may_process(self) -> bool:
        """Whether just fetched hot (or bulk changelog) records may be processed: not while
        the app's flow is suspended (startup before recovery, a rebalance). Dropped records
        come again: Faust seeks the stream partitions back to their committed offsets before
        it resumes (and again when a fetch returns while it is suspended), and `_rewind` seeks
        the changelog partitions back to where recovery reads next. Once the flow runs, the
        fetch holds records from the new positions, even one begun before the rebalance:
        aiokafka discards what it fetched before a seek or an assignment change (Faust's own
        path likewise checks the generation as of the fetch's return)."""
        return self.flow_active and self.app.flow_control.is_active()

    async def ack_fetched(self, tp: TP, first: int, last: int) -> None:
        """Ack offsets first..last of a partition in bulk, as `Consumer.ack` does one message.

        When the offset before `first` is neither committed nor acked (records deleted by
        retention before this fetch), that span is handed to Faust's own gap bookkeeping, so
        the committed offset can move past it without listing every missing offset.
        """
        committed = self._committed_offset[tp]
        index = self._acked_index[tp]
        if committed is not None and committed < first and first - 1 not in index:
            await self._add_gap(tp, committed, first - 1)
        fresh = [o for o in range(first, last + 1) if o not in index]
        index.update(fresh)
        self._acked[tp].extend(fresh)
        self._n_acked += len(fresh)
        self._read_offset[tp] = last
        self.app.monitor.stream_inbound_time[tp] = time.monotonic()  # for the livelock check


class BatchProducer(faust_aiokafka.Producer):
    """Faust's aiokafka producer, plus one batched send per partition."""

    async def send_partitioned(
        self, topic: str, records: Mapping[int, Sequence[tuple[bytes | None, bytes | None]]]
    ) -> list[asyncio.Future[Any]]:
        """Enqueue records as whole batches, one (or more when full) per partition.

        Returns the delivery futures; Faust's commit flushes the producer (waits for them)
        before it commits offsets.
        """
        items = ((p, key, value) for p, pairs in records.items() for key, value in pairs)
        futures = await send_in_batches(self._ensure_producer(), topic, items)
        for future in futures:
            future.add_done_callback(_log_send_failure)
        return futures


async def send_in_batches(
    producer: Any, topic: str, records: Iterable[tuple[int, bytes | None, bytes | None]]
) -> list[asyncio.Future[Any]]:
    """Enqueue (partition, key, value) records on an aiokafka producer as whole batches per
    partition, a batch sent as soon as it is full; returns the delivery futures (not awaited)."""
    open_batches: dict[int, Any] = {}
    futures: list[asyncio.Future[Any]] = []
    for partition, key, value in records:
        batch = open_batches.setdefault(partition, producer.create_batch())
        if batch.append(key=key, value=value, timestamp=None) is None:  # full: send it
            futures.append(await producer.send_batch(batch, topic, partition=partition))
            open_batches[partition] = batch = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:
                raise ValueError(f"a record of {len(value or b'')} bytes exceeds a batch")
    for partition, batch in open_batches.items():
        futures.append(await producer.send_batch(batch, topic, partition=partition))
    return futures


def _log_send_failure(future: asyncio.Future[Any]) -> None:
    """A batch the producer could not deliver after its retries: say so loudly."""
    if not future.cancelled() and future.exception() is not None:
        log.error("a produced batch was not delivered: %r", future.exception())


class Transport(faust_aiokafka.Transport):
    """The aiokafka transport with the bulk consumer and the batch producer."""

    Consumer = BulkConsumer
    Producer = BatchProducer


def _hot_record(tp: TP, record: Any) -> InMessage:
    """An aiokafka ConsumerRecord as the record the handlers take (timestamp in seconds)."""
    ts = record.timestamp / 1000.0 if record.timestamp and record.timestamp > 0 else time.time()
    return InMessage(record.key, record.value, tp.partition, record.offset, ts)
