"""The audio road's Kafka wiring: chunks in, track records and dead letters out, and the audio
topic's offsets committed only up to where a restart must read again (audio/resume.py).

The audio topic is read by a consumer group of its own, `<app id>-audio`, not by a Faust agent:
Faust commits every offset its agents have passed (and at a rebalance waits for every message
to be acked), so it cannot hold a commit back at the first chunk of an unfinished track. One
fetched batch, in order:
  1. each chunk goes through the assembler with its partition and offset; what comes out (a
     finished track's record, a refused chunk's dead letter) is collected;
  2. those records are sent and their delivery awaited;
  3. each partition's resume point is committed: at most the first chunk of its oldest
     unfinished track.
A crash anywhere before 3 means the chunks since the last commit are read again by an empty
assembler and give the same records: a finished track's record is sent again (identical; the
tracks topic is compacted and the catalog's upsert is idempotent), a refused chunk's dead letter
too (dead letters come at least once). A rebalance empties the assembler for the partitions it
moves, and the consumer starts them again at their committed resume points; a batch whose
partitions moved while its records were being sent is not committed. A failed send or commit
puts the batch's partitions back to their last resume point, emptied, the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError

from radio_engine import schemas
from radio_engine.dead_letters import dead_letter
from radio_engine.engine import Engine
from radio_engine.kafka_security import security_kwargs
from radio_engine.settings import Settings
from radio_engine.worker import metrics
from radio_engine.worker.lag import QUERY_TIMEOUT_S, LagGauge, lag_records

log = logging.getLogger(__name__)

#: the audio consumer group is the app id with this suffix
GROUP_SUFFIX = "-audio"
#: chunks taken per fetch: a commit follows every batch, so a batch is a few seconds of work
MAX_RECORDS = 16
#: a chunk message may be near the broker's 2 MiB message limit: fetch at least that per partition
FETCH_PARTITION_BYTES = 4 * 1024 * 1024
#: seconds to wait before trying to connect again, and at most for a client to close
RETRY_S = 2.0
CLOSE_TIMEOUT_S = 3.0
#: seconds between two samples of the audio partitions' consumer lag
LAG_INTERVAL_S = 2.0

#: (topic, key, value) of one record to send
Output = tuple[str, bytes | None, bytes]


def audio_group(settings: Settings) -> str:
    """The consumer group that reads the audio topic (offsets: the resume points)."""
    return settings.app_id + GROUP_SUFFIX


def chunk_outputs(engine: Engine, settings: Settings, record: Any) -> list[Output]:
    """One chunk record through the assembler: what to send for it (nothing, the finished
    track's record, or a dead letter), with its metrics counted."""
    started = time.perf_counter()
    try:
        track = engine.audio.accept(record.key, record.value, record.partition, record.offset)
    except Exception as exc:  # no input may crash the worker: refuse it, go on
        if isinstance(exc, schemas.BadMessage):
            reason, error = exc.reason, exc.error
        else:
            log.exception("audio chunk at %s/%s failed", record.partition, record.offset)
            reason, error = "internal", repr(exc)
        metrics.AUDIO_CHUNKS.labels("dead_letter").inc()
        metrics.DEAD_LETTERS.labels(settings.topic_audio, reason).inc()
        letter = dead_letter(
            reason,
            error,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
        )
        return [(settings.topic_dead_letters, record.key, letter)]
    metrics.AUDIO_CHUNKS.labels("accepted").inc()
    if track is None:
        return []
    metrics.TRACKS_EMBEDDED.inc()
    metrics.AUDIO_SECONDS.inc(track["audio_seconds"])
    metrics.EMBED_SECONDS.observe(time.perf_counter() - started)
    return [(settings.topic_tracks, track["track_id"].encode(), schemas.encode("track", track))]


class AudioRoad(ConsumerRebalanceListener):
    """The consumer, the producer and the per-partition bookkeeping of the audio road."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        #: rebalances seen: a batch started in one epoch is not committed in another
        self.epoch = 0
        #: per partition: the offset the assembler's state was built from (its resume point)
        self.restart_at: dict[int, int] = {}
        self.committed: dict[int, int] = {}
        self.lag = LagGauge()  # radio_consumer_lag_records of the audio partitions
        self.lag_sampled = 0.0
        options = security_kwargs(settings)
        session_s = settings.group_session_timeout_s
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.broker,
            group_id=audio_group(settings),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(session_s * 1000),
            heartbeat_interval_ms=int(min(3.0, session_s / 4) * 1000),
            max_partition_fetch_bytes=FETCH_PARTITION_BYTES,
            **options,
        )
        self.producer = AIOKafkaProducer(bootstrap_servers=settings.broker, acks="all", **options)

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self._reset(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self._reset(assigned)

    def _reset(self, partitions: Any) -> None:
        """Partitions moved: empty the assembler for them; they start again where committed."""
        self.epoch += 1
        for tp in partitions:
            self.engine.audio.forget(tp.partition)
            self.restart_at.pop(tp.partition, None)
            self.committed.pop(tp.partition, None)

    async def start(self) -> None:
        """Connect both clients (raises KafkaError when the broker cannot be reached)."""
        self.consumer.subscribe([self.settings.topic_audio], listener=self)
        try:
            await self.consumer.start()
            await self.producer.start()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop both clients, each given at most CLOSE_TIMEOUT_S (a broker may be gone)."""
        for client in (self.consumer, self.producer):
            try:
                await asyncio.wait_for(client.stop(), CLOSE_TIMEOUT_S)
            except (TimeoutError, KafkaError) as exc:
                log.warning("audio: %s did not close cleanly: %r", type(client).__name__, exc)

    async def sample_lag(self) -> None:
        """Every LAG_INTERVAL_S: records behind the broker's end per audio partition (the end
        as of the last fetch), as the worker's gauge does for the partitions Faust reads."""
        now = time.monotonic()
        if now - self.lag_sampled < LAG_INTERVAL_S:
            return
        self.lag_sampled = now
        assigned = set(self.consumer.assignment())
        parts = sorted(assigned)
        try:
            found = await asyncio.wait_for(
                asyncio.gather(*(self.consumer.position(tp) for tp in parts)), QUERY_TIMEOUT_S
            )
        except (TimeoutError, KafkaError, IllegalStateError):  # a rebalance: next time
            return
        ends = {tp: self.consumer.highwater(tp) for tp in parts}
        self.lag.publish(lag_records(dict(zip(parts, found, strict=True)), ends), assigned)

    async def run_batch(self, batches: dict[TopicPartition, list[Any]]) -> None:
        """Steps 1-3 of the module docstring for one fetched batch."""
        epoch = self.epoch
        for tp, records in batches.items():
            self.restart_at.setdefault(tp.partition, records[0].offset)
        outputs = [
            out
            for records in batches.values()
            for record in records
            for out in chunk_outputs(self.engine, self.settings, record)
        ]
        try:
            futures = [
                await self.producer.send(topic, key=key, value=value)
                for topic, key, value in outputs
            ]
            await asyncio.gather(*futures)
            if self.epoch == epoch:
                await self._commit(batches)
        except KafkaError as exc:
            log.warning("audio: %r; its partitions are read again from their resume points", exc)
            self._rewind(batches)

    async def _commit(self, batches: dict[TopicPartition, list[Any]]) -> None:
        points: dict[TopicPartition, int] = {}
        for tp in batches:
            point = self.engine.audio.resume.resume_at(tp.partition)
            if point is not None and point != self.committed.get(tp.partition):
                points[tp] = point
        if points:
            await self.consumer.commit(points)
            for tp, point in points.items():
                self.committed[tp.partition] = self.restart_at[tp.partition] = point

    def _rewind(self, batches: dict[TopicPartition, list[Any]]) -> None:
        """Empty the assembler for these partitions and read them again from their resume
        points (a partition revoked meanwhile is its new owner's)."""
        for tp in batches:
            start = self.restart_at.pop(tp.partition, None)
            self.engine.audio.forget(tp.partition)
            self.committed.pop(tp.partition, None)
            if start is not None:
                with contextlib.suppress(IllegalStateError):
                    self.consumer.seek(tp, start)


async def consume_audio(
    should_stop: Callable[[], bool], settings: Settings, engine: Engine
) -> None:
    """Run the audio road until `should_stop()` (the app is stopping) says so."""
    while not should_stop():
        road = AudioRoad(settings, engine)
        try:
            await road.start()
        except KafkaError as exc:
            log.warning("audio: cannot connect (%r); trying again in %.0f s", exc, RETRY_S)
            await asyncio.sleep(RETRY_S)
            continue
        try:
            while not should_stop():
                batches = await road.consumer.getmany(timeout_ms=500, max_records=MAX_RECORDS)
                if batches:
                    await road.run_batch(batches)
                await road.sample_lag()
        finally:
            await road.close()
        return
