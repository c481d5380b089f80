"""Kafka for the benchmark: topics, sending backlogs and paced events, reading topics and queues."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner

from listen_bench.common import PARTITIONS, Encoded
from radio_engine import schemas
from radio_engine.player.kafka_io import make_consumer, make_producer
from radio_engine.player.replay import event_id
from radio_engine.settings import Settings
from radio_engine.worker.transport import send_in_batches


async def create_topics(settings: Settings, *names: str) -> None:
    """Create plain topics with PARTITIONS partitions (an existing one is left as it is)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.broker)
    await admin.start()
    try:
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics([NewTopic(n, PARTITIONS, 1) for n in names])
    finally:
        await admin.close()


def encode_events(events: list[dict[str, Any]]) -> Encoded:
    """Listen events as the player sends them (validated, with an event_id), keyed by listener."""
    return [
        (e["listener_id"].encode(), schemas.encode("listen", {**e, "event_id": event_id(e, n)}))
        for n, e in enumerate(events)
    ]


async def send_backlog(settings: Settings, topic: str, encoded: Encoded) -> tuple[float, float]:
    """Send every event as fast as this process can: whole producer batches per partition, the
    partition chosen by aiokafka's default partitioner (as a keyed send would); all acks awaited.

    Returns (wall time of the first send, wall time the last one was acknowledged).
    """
    producer = make_producer(settings)
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(topic))
        choose = DefaultPartitioner()
        first = time.time()
        records = ((choose(key, partitions, partitions), key, value) for key, value in encoded)
        await asyncio.gather(*await send_in_batches(producer, topic, records))
        return first, time.time()
    finally:
        await producer.stop()


@dataclass(frozen=True)
class SentEvent:
    """Where a sent listen event landed and the timestamp its record carries."""

    listener: str
    partition: int
    offset: int
    ts_ms: int


async def send_paced(
    settings: Settings, topic: str, encoded: Encoded, rate: float
) -> tuple[list[SentEvent], float]:
    """Send event i at i / rate seconds; returns where each landed and the rate achieved.

    Each record's timestamp is set here and kept: aiokafka's send metadata gives every record of a
    producer batch the first record's timestamp, so it cannot be used per event.
    """
    producer = make_producer(settings)
    await producer.start()
    try:
        sends = []
        start = time.monotonic()
        for i, (key, value) in enumerate(encoded):
            wait = i / rate - (time.monotonic() - start)
            if wait > 0:
                await asyncio.sleep(wait)
            ts = int(time.time() * 1000)
            sends.append((key, ts, await producer.send(topic, value, key, timestamp_ms=ts)))
        took = time.monotonic() - start
        metas = await asyncio.gather(*(f for _, _, f in sends))
    finally:
        await producer.stop()
    sent = [
        SentEvent(key.decode(), m.partition, m.offset, ts)
        for (key, ts, _), m in zip(sends, metas, strict=True)
    ]
    return sent, len(sent) / took if took > 0 else float("nan")


class TopicReader:
    """Reads one topic from the start, all partitions, no group; keeps what `parse` returns."""

    def __init__(self, settings: Settings, topic: str, parse: Callable[[Any], Any]) -> None:
        """A consumer for `topic` (not started yet); `parse` turns each record into an item."""
        self.topic = topic
        self.parse = parse
        self.consumer = make_consumer(settings, max_partition_fetch_bytes=4 * 1024 * 1024)
        self.items: list[Any] = []
        self.partitions: list[TopicPartition] = []

    async def start(self, timeout: float = 60.0) -> TopicReader:
        """Connect once the topic exists, and take all its partitions from the earliest offset."""
        await self.consumer.start()
        deadline = time.monotonic() + timeout
        while self.topic not in await self.consumer.topics():
            if time.monotonic() > deadline:
                await self.consumer.stop()
                raise TimeoutError(f"topic {self.topic} did not appear in {timeout:.0f} s")
            await asyncio.sleep(0.5)
        self.consumer.subscribe([self.topic])  # no group: every partition is ours
        while not self.consumer.assignment():
            await self.poll(100)
            if time.monotonic() > deadline:
                await self.consumer.stop()
                raise TimeoutError(f"no partitions of {self.topic} in {timeout:.0f} s")
        self.partitions = sorted(self.consumer.assignment())
        return self

    async def stop(self) -> None:
        """Close the consumer."""
        await self.consumer.stop()

    async def poll(self, timeout_ms: int = 200) -> int:
        """Read what is there now; returns the number of records read."""
        batch = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=10_000)
        records = [r for rs in batch.values() for r in rs]
        self.items.extend(self.parse(r) for r in records)
        return len(records)

    async def end_offsets(self) -> dict[TopicPartition, int]:
        """The topic's end offsets now."""
        return await self.consumer.end_offsets(self.partitions)

    async def _behind(self, ends: dict[TopicPartition, int]) -> bool:
        """True while some partition's read position is short of its end offset."""
        for tp, end in ends.items():
            if await self.consumer.position(tp) < end:
                return True
        return False

    async def catch_up(self, quiet_s: float = 1.0, timeout: float = 120.0) -> dict[int, int]:
        """Read to the end, until the end offsets stay still for `quiet_s`; returns them."""
        deadline = time.monotonic() + timeout
        ends = await self.end_offsets()
        still_since = time.monotonic()
        while time.monotonic() < deadline:
            while await self._behind(ends):
                await self.poll()
            now = await self.end_offsets()
            if now != ends:
                ends, still_since = now, time.monotonic()
            elif time.monotonic() - still_since >= quiet_s:
                return {tp.partition: end for tp, end in ends.items()}
            await asyncio.sleep(0.2)
        raise TimeoutError(f"{self.topic}: end offsets still moving after {timeout:.0f} s")


@dataclass(frozen=True)
class QueueRecord:
    """A queue snapshot as a player sees it: whose, which event caused it, its record time."""

    listener: str
    partition: int  # after_event.partition (-1 if absent)
    offset: int  # after_event.offset (-1 if absent)
    ts_ms: int  # Kafka timestamp of the queue record (the worker's producer stamps it)


def parse_queue(record: Any) -> QueueRecord:
    """One queues-topic record (schemas/radio-queue.v1.json) -> QueueRecord."""
    body = orjson.loads(record.value)
    after = body.get("after_event") or {}
    return QueueRecord(
        body["listener_id"], after.get("partition", -1), after.get("offset", -1), record.timestamp
    )
