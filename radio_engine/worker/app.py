"""The Faust app: topics, the listener table and thin agents around the plain-function logic.

Wiring only. What happens to a batch of listen events lives in listen_batch.py, what happens to
an audio chunk in audio_assembly.py, the catalog in catalog.py; this module moves bytes between
Kafka and those functions and records metrics.

Commit path of one listen micro-batch (the order is the guarantee):
  1. take up to `batch_max` events (or what `batch_within_s` gives) from radio.listens.v1;
  2. decode + validate each once; bad ones -> radio.dead-letters.v1 with the reason;
  3. apply each listener's events in order (GRU step batched across listeners); an event whose
     offset is <= the listener's stored last_offset was applied before and is skipped;
  4. write each touched listener's state once to the table, and its changelog record to the
     partition the listener's events came from (co-partitioned with radio.listens.v1);
  5. publish each changed queue to radio.queues.v1;
  6. only then does Faust ack the batch's offsets (take_events acks after the loop body).
A crash before 6 replays the batch; step 3's offset check makes the replay harmless.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer

from radio_engine import schemas
from radio_engine.settings import Settings
from radio_engine.worker import metrics
from radio_engine.worker.dead_letters import dead_letter
from radio_engine.worker.engine import Engine
from radio_engine.worker.listen_batch import InMessage
from radio_engine.worker.web import register_pages

log = logging.getLogger(__name__)

LISTENER_TABLE = "listeners"


def build_app(settings: Settings, engine: Engine) -> faust.App:
    """A Faust app for these settings that drives `engine` (model, catalog, selector)."""
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{hp}" for hp in settings.broker.split(",")],
        store="memory://",
        datadir=str(settings.worker_data_path),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        web_port=settings.worker_port,
        web_host="127.0.0.1",
        web_bind="127.0.0.1",
        consumer_auto_offset_reset="earliest",
        producer_linger_ms=5,
        stream_recovery_delay=0.0,
        table_standby_replicas=0,
        web_enabled=True,
        key_serializer="raw",  # every topic and the table carry bytes we encode ourselves
        value_serializer="raw",
    )
    raw = {
        "key_type": bytes,
        "value_type": bytes,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    listens = app.topic(settings.topic_listens, partitions=settings.topic_partitions, **raw)
    audio = app.topic(settings.topic_audio, **raw)
    tracks = app.topic(settings.topic_tracks, **raw)
    queues = app.topic(settings.topic_queues, partitions=settings.topic_partitions, **raw)
    dead = app.topic(settings.topic_dead_letters, **raw)
    table = app.Table(
        LISTENER_TABLE,
        default=None,
        partitions=settings.topic_partitions,
        key_type=bytes,
        value_type=bytes,
    )
    metrics.MODEL_INFO.labels(engine.model.version, str(engine.model.manifest.trained).lower()).set(
        1
    )

    @app.agent(listens, name="listens")
    async def process_listens(stream: faust.StreamT) -> None:
        """Micro-batches of listen events -> listener state + queues (see the module docstring)."""
        async for events in stream.take_events(settings.batch_max, within=settings.batch_within_s):
            messages = [
                InMessage(
                    e.message.key,
                    e.message.value,
                    e.message.partition,
                    e.message.offset,
                    e.message.timestamp or time.time(),
                )
                for e in events
            ]
            try:
                outcome = engine.listens.process(messages, table.data.get)
            except Exception:  # a bug must not kill the worker: the batch is kept, not lost
                log.exception("listen batch of %d failed; sent to dead letters", len(messages))
                outcome = engine.listens.refuse_all(messages, "internal")
            for key, (partition, value) in outcome.states.items():
                table.data[key] = value
                table.send_changelog(partition, key, value)
            for key, value, _source_ts in outcome.queues:
                queues.send_soon(key=key, value=value)
            for key, value, reason in outcome.dead_letters:
                dead.send_soon(key=key, value=value)
                metrics.DEAD_LETTERS.labels(settings.topic_listens, reason).inc()
            _observe_listen_batch(outcome, len(messages))

    @app.agent(audio, name="audio")
    async def process_audio(stream: faust.StreamT) -> None:
        """Audio chunks -> (when a track is complete) its record on the tracks topic."""
        async for event in stream.events():
            message = event.message
            started = time.perf_counter()
            try:
                record = engine.audio.accept(message.key, message.value)
            except Exception as exc:  # no input may crash the worker: refuse it, go on
                if isinstance(exc, schemas.BadMessage):
                    reason, error = exc.reason, exc.error
                else:
                    log.exception("audio chunk at %s/%s failed", message.partition, message.offset)
                    reason, error = "internal", repr(exc)
                metrics.AUDIO_CHUNKS.labels("dead_letter").inc()
                metrics.DEAD_LETTERS.labels(settings.topic_audio, reason).inc()
                letter = dead_letter(
                    reason,
                    error,
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    key=message.key,
                    value=message.value,
                )
                await dead.send(key=message.key, value=letter)
                continue
            metrics.AUDIO_CHUNKS.labels("accepted").inc()
            if record is not None:
                await tracks.send(
                    key=record["track_id"].encode(), value=schemas.encode("track", record)
                )
                metrics.TRACKS_EMBEDDED.inc()
                metrics.AUDIO_SECONDS.inc(record["audio_seconds"])
                metrics.EMBED_SECONDS.observe(time.perf_counter() - started)

    @app.task
    async def follow_tracks() -> None:
        """Every worker keeps the whole catalog: read radio.tracks.v1 from the start, no group."""
        await _follow_tracks_topic(app, settings, engine)

    @app.timer(interval=5.0)
    async def gauges() -> None:
        metrics.LISTENERS_HELD.set(len(table.data))
        metrics.CATALOG_TRACKS.set(len(engine.catalog))
        metrics.CATALOG_AUDIO_TRACKS.set(engine.catalog.audio_count)

    register_pages(app, table, engine)
    return app


def _observe_listen_batch(outcome: Any, size: int) -> None:
    """Record one batch's metrics: a handful of observations per batch, not per event."""
    metrics.BATCH_SIZE.observe(size)
    metrics.GRU_STEP_SECONDS.observe(outcome.gru_seconds)
    metrics.SELECTOR_SECONDS.observe(outcome.selector_seconds)
    metrics.BATCH_SECONDS.observe(outcome.total_seconds)
    for (event, result), n in outcome.counts.items():
        metrics.EVENTS.labels(event, result).inc(n)
    if outcome.rescored:
        metrics.CATALOG_RESCORES.inc(outcome.rescored)
    if outcome.unknown_tracks:
        metrics.UNKNOWN_TRACKS.inc(outcome.unknown_tracks)
    if outcome.queues:
        metrics.QUEUES_PUBLISHED.inc(len(outcome.queues))
        now = time.time()
        for _key, _value, source_ts in outcome.queues:
            metrics.EVENT_TO_QUEUE_SECONDS.observe(max(0.0, now - source_ts))


async def _follow_tracks_topic(app: faust.App, settings: Settings, engine: Engine) -> None:
    """Consume every partition of the tracks topic into the in-memory catalog, forever."""
    # no group: the subscription takes every partition, so every worker sees every track
    consumer = AIOKafkaConsumer(
        settings.topic_tracks,
        bootstrap_servers=settings.broker,
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        while not app.should_stop:
            batches = await consumer.getmany(timeout_ms=500, max_records=1000)
            for records in batches.values():
                for record in records:
                    _apply_track_record(settings, engine, record)
    finally:
        await consumer.stop()


def _apply_track_record(settings: Settings, engine: Engine, record: Any) -> None:
    """One tracks-topic record into the catalog; a bad one is logged and counted, not fatal."""
    if record.value is None:  # a tombstone: compaction removes the track
        engine.catalog.remove(record.key.decode())
        return
    try:
        track = schemas.decode("track", record.value)
        engine.catalog.upsert_audio_track(track, engine.model)
    except Exception as exc:  # a bad catalog record must not stop the worker
        reason = exc.reason if isinstance(exc, schemas.BadMessage) else "internal"
        metrics.DEAD_LETTERS.labels(settings.topic_tracks, reason).inc()
        log.warning("track record %s/%s refused: %s", record.partition, record.offset, exc)
