"""The Faust app: topics, the listener table and thin agents around the plain-function logic.

Wiring only. What happens to a batch of listen records lives in listens/pipeline.py, what
happens to an audio chunk in audio/assembly.py, the catalog in catalog.py; this module moves
bytes between Kafka and those functions and records metrics.

Commit path of one listen batch (the order is the guarantee; worker/transport.py steps 1-4):
  1. the consumer fetches what the broker has for this worker's listens partitions (up to
     `batch_max` records, the fetch held at most `fetch_max_wait_s`) and hands it over whole;
  2. the pipeline decodes and validates each record once (bad ones -> radio.dead-letters.v1
     with the reason), applies each listener's events in order (GRU batched across
     listeners), skipping any event at or below the listener's stored offset (a replay);
  3. each touched listener's state is written once to the table, and its changelog record is
     enqueued to the partition its events came from (co-partitioned with radio.listens.v1);
  4. each changed queue is enqueued to radio.queues.v1: one batched send per partition;
  5. only then are the batch's offsets acked; Faust commits them after flushing the producer.
A crash before 5 replays the batch; step 2's offset check makes the replay harmless.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer

from radio_engine import schemas
from radio_engine.engine import Engine
from radio_engine.kafka_security import security_kwargs
from radio_engine.listens.decode import InMessage
from radio_engine.listens.pipeline import BatchOutcome
from radio_engine.settings import Settings
from radio_engine.worker import metrics
from radio_engine.worker.audio import consume_audio
from radio_engine.worker.http_auth import token_middleware
from radio_engine.worker.lag import LagGauge
from radio_engine.worker.transport import SCHEME, BatchProducer, RadioApp
from radio_engine.worker.web import register_pages

log = logging.getLogger(__name__)

LISTENER_TABLE = "listeners"
#: seconds between samples of the size gauges and the consumer lag
GAUGES_INTERVAL_S = 2.0
#: the listener changelog (compact, as Faust makes it) rolls small segments so the cleaner can
#: reach all but the newest ~16 MiB per partition: a restart reads ~1 record per listener, not
#: every state ever written (the cleaner never touches the active segment). Applied when Faust
#: creates the topic; an existing topic keeps its configs (kafka-configs.sh changes them).
CHANGELOG_CONFIGS = {
    "segment.bytes": str(16 * 1024 * 1024),
    "segment.ms": str(10 * 60 * 1000),
    "min.cleanable.dirty.ratio": "0.1",
}


def broker_credentials(settings: Settings) -> faust.SASLCredentials | None:
    """Faust's broker credentials for SASL_SSL (SCRAM over TLS): the same context, mechanism,
    user and password every other client gets from kafka_security; None for PLAINTEXT."""
    options = security_kwargs(settings)
    if options["security_protocol"] == "PLAINTEXT":
        return None
    return faust.SASLCredentials(
        username=options["sasl_plain_username"],
        password=options["sasl_plain_password"],
        ssl_context=options["ssl_context"],
        mechanism=options["sasl_mechanism"],
    )


def changelog_configs(settings: Settings) -> dict[str, str]:
    """The listener changelog's topic configs: CHANGELOG_CONFIGS and min.insync.replicas."""
    return {**CHANGELOG_CONFIGS, "min.insync.replicas": str(settings.topic_min_insync_replicas)}


def build_app(settings: Settings, engine: Engine, http_token: str = "") -> faust.App:
    """A Faust app for these settings that drives `engine` (model, catalog, selector); with an
    `http_token`, its lookups and live page require it (worker/http_auth.py)."""
    app = RadioApp(
        settings.app_id,
        broker=[f"{SCHEME}://{hp}" for hp in settings.broker.split(",")],
        fetch_max_wait_ms=int(settings.fetch_max_wait_s * 1000),
        broker_max_poll_records=settings.batch_max,
        store="memory://",
        datadir=str(settings.worker_data_path),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        broker_credentials=broker_credentials(settings),
        web_port=settings.worker_port,
        web_host=settings.worker_host,
        web_bind=settings.worker_bind,
        consumer_auto_offset_reset="earliest",
        producer_linger_ms=5,
        stream_recovery_delay=0.0,
        table_standby_replicas=settings.table_standby_replicas,
        # a SIGKILLed worker leaves no LeaveGroup: its restart (or the survivors) wait this long
        broker_session_timeout=settings.group_session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.group_session_timeout_s / 4),
        # a static member (RADIO_WORKER_NAME set) restarted within its session gets its
        # partitions back without waiting that session out
        consumer_group_instance_id=settings.group_instance_id,
        web_enabled=True,
        web_application_options={"middlewares": [token_middleware(http_token)]},
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
    # recovery and standby copies read its changelog in bulk (worker/recovery.py)
    table = app.bulk_table(
        LISTENER_TABLE,
        default=None,
        partitions=settings.topic_partitions,
        key_type=bytes,
        value_type=bytes,
        extra_topic_configs=changelog_configs(settings),
    )
    metrics.MODEL_INFO.labels(engine.model.version, str(engine.model.manifest.trained).lower()).set(
        1
    )

    @app.bulk_agent(listens)
    async def process_listens(records: list[InMessage]) -> None:
        """A fetched batch of listen records -> listener state + queues (module docstring)."""
        try:
            outcome = engine.listens.process(records, table.data.get)
        except Exception:  # a bug must not kill the worker: the batch is kept, not lost
            log.exception("listen batch of %d failed; sent to dead letters", len(records))
            outcome = engine.listens.refuse_all(records, "internal")
        await _write_listen_outcome(app, settings, table, outcome)
        _observe_listen_batch(outcome, len(records))

    @app.task
    async def process_audio() -> None:
        """Audio chunks -> finished tracks' records, committed only up to each partition's
        resume point so that a restart finishes a track cut short (worker/audio.py)."""
        await consume_audio(lambda: app.should_stop, settings, engine)

    @app.task
    async def follow_tracks() -> None:
        """Every worker keeps the whole catalog: read radio.tracks.v1 from the start, no group."""
        await _follow_tracks_topic(app, settings, engine)

    @app.timer(interval=settings.refine_interval_s)
    async def refine_first_pools() -> None:
        """New listeners' whole-catalog rescores, between batches rather than inside them."""
        started = time.perf_counter()
        refined = engine.selector.refine(settings.refine_per_tick)
        if refined:
            metrics.CATALOG_RESCORES.inc(refined)
            metrics.REFINE_SECONDS.observe(time.perf_counter() - started)

    lag = LagGauge()

    @app.timer(interval=GAUGES_INTERVAL_S)
    async def gauges() -> None:
        """Sizes and consumer lag, sampled (cheap; the lag asks the broker once per tick)."""
        metrics.FIRST_POOL_LISTENERS.set(engine.selector.pools.waiting_count)
        metrics.LISTENERS_HELD.set(len(table.data))
        metrics.CATALOG_TRACKS.set(len(engine.catalog))
        metrics.CATALOG_AUDIO_TRACKS.set(engine.catalog.audio_count)
        await lag.update(app)

    register_pages(app, table, engine)
    return app


async def _write_listen_outcome(
    app: faust.App, settings: Settings, table: Any, outcome: BatchOutcome
) -> None:
    """Steps 3-4 of the commit path: table + changelog, queues and dead letters, batched."""
    producer: BatchProducer = app.producer
    changelog: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
    data = table.data
    # the memory store drops a revoked partition's keys after a rebalance only if it knows
    # their partition (it learns it from changelog recovery, not from writes like these)
    key_partition = getattr(data, "_key_partition", None)
    for key, (partition, value) in outcome.states.items():
        data[key] = value
        changelog[partition].append((key, value))
        if key_partition is not None:
            key_partition[key] = partition
    if changelog:
        await producer.send_partitioned(table.changelog_topic.get_topic_name(), changelog)
    queues: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
    for q in outcome.queues:
        queues[q.partition].append((q.key, q.value))
    if queues:
        await producer.send_partitioned(settings.topic_queues, queues)
    for key, value, reason in outcome.dead_letters:
        await producer.send(settings.topic_dead_letters, key, value, None, None, None)
        metrics.DEAD_LETTERS.labels(settings.topic_listens, reason).inc()


def _observe_listen_batch(outcome: BatchOutcome, size: int) -> None:
    """Record one batch's metrics: a handful of observations per batch, one per event for the
    event -> queue latency."""
    metrics.BATCH_SIZE.observe(size)
    seconds = outcome.seconds
    metrics.GRU_STEP_SECONDS.observe(seconds["gru"])
    metrics.SELECTOR_SECONDS.observe(seconds["selector"])
    metrics.BATCH_SECONDS.observe(seconds["total"])
    for (event, result), n in outcome.counts.items():
        metrics.EVENTS.labels(event, result).inc(n)
    if outcome.rescored:
        metrics.CATALOG_RESCORES.inc(outcome.rescored)
    if outcome.first_pools:
        metrics.FIRST_POOLS.inc(outcome.first_pools)
    if outcome.unknown_tracks:
        metrics.UNKNOWN_TRACKS.inc(outcome.unknown_tracks)
    if outcome.queues:
        metrics.QUEUES_PUBLISHED.inc(len(outcome.queues))
    now = time.time()
    observe = metrics.EVENT_TO_QUEUE_SECONDS.observe
    for ts in (now - outcome.applied_kafka_ts).tolist():
        observe(max(ts, 0.0))


async def _follow_tracks_topic(app: faust.App, settings: Settings, engine: Engine) -> None:
    """Consume every partition of the tracks topic into the in-memory catalog, forever."""
    # no group: the subscription takes every partition, so every worker sees every track
    consumer = AIOKafkaConsumer(
        settings.topic_tracks,
        bootstrap_servers=settings.broker,
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",
        **security_kwargs(settings),
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
