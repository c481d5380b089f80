"""`radio-engine tail --listener ID`: follow one listener's radio queue as it changes.

Reads the listener's partition of the queues topic from the start, so the current queue shows
at once, then keeps following; a version at or below the highest seen is ignored (players keep
the highest version).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner

from radio_engine.player.kafka_io import make_consumer
from radio_engine.settings import Settings


class VersionFilter:
    """Passes each listener's queue only when its version is higher than any seen before."""

    def __init__(self) -> None:
        self.highest: dict[str, int] = {}

    def accept(self, queue: dict[str, Any]) -> bool:
        listener, version = queue["listener_id"], int(queue["version"])
        if version <= self.highest.get(listener, 0):
            return False
        self.highest[listener] = version
        return True


def partition_for(listener_id: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2 of the key) gives this listener."""
    all_parts = list(range(partitions))
    return DefaultPartitioner()(listener_id.encode(), all_parts, all_parts)


async def topic_partitions(settings: Settings, topic: str, timeout: float = 30.0) -> list[int]:
    """The partitions of a topic, waiting for it to exist."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.broker)
    await admin.start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            [meta] = await admin.describe_topics([topic])
            if meta["partitions"]:
                return sorted(p["partition"] for p in meta["partitions"])
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {topic} does not exist at {settings.broker}")
            await asyncio.sleep(0.5)
    finally:
        await admin.close()


async def follow_queues(
    settings: Settings, listener_ids: Iterable[str] | None = None, timeout: float | None = None
) -> AsyncIterator[dict[str, Any]]:
    """Yield new queue versions (of the given listeners, or all) as they are published."""
    wanted = set(listener_ids) if listener_ids is not None else None
    consumer = make_consumer(settings)
    await consumer.start()
    deadline = time.monotonic() + timeout if timeout else None
    try:
        partitions = await topic_partitions(settings, settings.topic_queues)
        if wanted is not None:
            chosen = {partition_for(lid, len(partitions)) for lid in wanted}
        else:
            chosen = set(partitions)
        consumer.assign([TopicPartition(settings.topic_queues, p) for p in sorted(chosen)])
        versions = VersionFilter()
        while deadline is None or time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    queue = orjson.loads(record.value)
                    if wanted is not None and queue["listener_id"] not in wanted:
                        continue
                    if versions.accept(queue):
                        yield queue
    finally:
        await consumer.stop()


def format_queue(queue: dict[str, Any], width: int = 5) -> str:
    """One line: listener, version, what caused it, and the first tracks."""
    after = queue.get("after_event", {})
    tracks = ", ".join(
        f"{t['track_id']}" + (f" ({t['artist_id']})" if t.get("artist_id") else "")
        for t in queue["tracks"][:width]
    )
    cause = f"after {after.get('event', '?')} {after.get('track_id', '?')}" if after else ""
    return f"{queue['listener_id']} v{queue['version']} {cause}: {tracks}"


async def _tail(settings: Settings, listener: str, count: int | None, timeout: float | None) -> int:
    shown = 0
    async for queue in follow_queues(settings, [listener], timeout=timeout):
        print(format_queue(queue, width=10), flush=True)
        shown += 1
        if count is not None and shown >= count:
            break
    return shown


def run(args: argparse.Namespace, settings: Settings) -> int:
    """`radio-engine tail --listener ID [--count N] [--timeout S]`."""
    shown = asyncio.run(_tail(settings, args.listener, args.count, args.timeout))
    return 0 if shown or args.count is None else 1
