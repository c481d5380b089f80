"""`radio-engine tail --listener ID`: follow one listener's radio queue as it changes.

Reads the listener's partition of the queues topic (murmur2 of the key, as Kafka's default
partitioner places it) from the start, so the current queue shows at once, then keeps
following; a version at or below the highest seen is ignored (players keep the highest version).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner

from radio_engine import schemas
from radio_engine.player.kafka_io import make_consumer
from radio_engine.settings import Settings

log = logging.getLogger(__name__)


class VersionFilter:
    """Passes each listener's queue only when its version is higher than any seen before."""

    def __init__(self) -> None:
        self.highest: dict[str, int] = {}

    def accept(self, queue: dict[str, Any]) -> bool:
        """True (and remember the version) when this queue is newer than the listener's last."""
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
    """The partitions of a topic, waiting up to `timeout` seconds for it to exist."""
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
    """Yield new queue versions (of the given listeners, or of all) from the start of their
    partitions, then as they are published; stop after `timeout` seconds when given.

    Messages that break the queue schema are logged and skipped, never fatal.
    """
    wanted = set(listener_ids) if listener_ids is not None else None
    wanted_keys = {lid.encode() for lid in wanted} if wanted is not None else None
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
                    if wanted_keys is not None and record.key not in wanted_keys:
                        continue
                    try:
                        queue = schemas.decode("queue", record.value)
                    except schemas.BadMessage as exc:
                        log.warning("skipped queue message at offset %d: %s", record.offset, exc)
                        continue
                    if wanted is not None and queue["listener_id"] not in wanted:
                        continue
                    if versions.accept(queue):
                        yield queue
    finally:
        await consumer.stop()


def _track(track: dict[str, Any], score: bool) -> str:
    text = track["track_id"]
    if track.get("artist_id"):
        text += f" ({track['artist_id']})"
    if score:
        text += f" {track['score']:.3f}"
    if track.get("explore"):
        text += " *"
    return text


def format_queue(queue: dict[str, Any], width: int = 5, scores: bool = False) -> str:
    """One line: listener, version, what caused it, and the first `width` tracks (artist)."""
    after = queue.get("after_event", {})
    tracks = ", ".join(_track(t, scores) for t in queue["tracks"][:width])
    cause = f" after {after.get('event', '?')} {after.get('track_id', '?')}" if after else ""
    return f"{queue['listener_id']} v{queue['version']}{cause}: {tracks}"


def format_queue_block(queue: dict[str, Any], width: int = 10) -> str:
    """A header (listener, version, time built, cause, model) and one line per track with
    artist and score; `*` marks exploration picks."""
    built = datetime.fromtimestamp(queue["generated_at"]).strftime("%H:%M:%S.%f")[:-3]
    after = queue.get("after_event", {})
    cause = f" after {after.get('event', '?')} {after.get('track_id', '?')}" if after else ""
    lines = [
        f"{queue['listener_id']} v{queue['version']} at {built}{cause} "
        f"(model {queue['model_version']}, {len(queue['tracks'])} tracks)"
    ]
    lines += [f"  {i:>2}. {_track(t, True)}" for i, t in enumerate(queue["tracks"][:width], 1)]
    return "\n".join(lines)


async def tail(
    settings: Settings, listener: str, count: int | None = None, timeout: float | None = None
) -> int:
    """Print each new version of one listener's queue; return how many were printed."""
    shown = 0
    async with contextlib.aclosing(follow_queues(settings, [listener], timeout=timeout)) as queues:
        async for queue in queues:
            print(format_queue_block(queue), flush=True)
            shown += 1
            if count is not None and shown >= count:
                break
    return shown


def run(args: argparse.Namespace, settings: Settings) -> int:
    """`radio-engine tail --listener ID [--count N] [--timeout S]`: 1 when nothing came in time."""
    shown = asyncio.run(tail(settings, args.listener, args.count, args.timeout))
    if not shown:
        print(
            f"tail: no queue for listener {args.listener} on {settings.topic_queues}",
            file=sys.stderr,
        )
        return 1
    return 0
