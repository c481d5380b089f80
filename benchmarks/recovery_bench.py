"""The parts of benchmarks/recovery.py: listener states on a changelog, a worker's restart
timeline seen from outside (HTTP /health and /listeners, one listen event), and the floors of
the changelog read (plain aiokafka) and of the table rebuild (Faust's memory store alone)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner
from listen_bench.workers import start_worker

from radio_engine import schemas
from radio_engine.broker.launcher import free_port
from radio_engine.broker.topics import ensure_topics
from radio_engine.listeners.state import ListenerState
from radio_engine.model.runtime import ServingModel
from radio_engine.player.kafka_io import make_consumer, make_producer
from radio_engine.settings import Settings
from radio_engine.worker.app import CHANGELOG_CONFIGS, LISTENER_TABLE
from radio_engine.worker.transport import send_in_batches

NAN = float("nan")
#: seconds between two polls of a starting worker's pages
POLL_S = 0.1
#: a phase fails when the worker has not reached its goal in this many seconds
GIVE_UP_S = 600.0


def changelog_topic(settings: Settings) -> str:
    """The listener table's changelog topic, as Faust names it."""
    return f"{settings.app_id}-{LISTENER_TABLE}-changelog"


def listener_id(n: int) -> str:
    """The id of synthetic listener n."""
    return f"rec-{n:07d}"


def partition_of(key: bytes, partitions: int) -> int:
    """The partition a keyed send (and so the worker's changelog write) puts this key on."""
    every = list(range(partitions))
    return DefaultPartitioner()(key, every, every)


class StateMaker:
    """Realistic listener states, seeded: the hidden state, 5 to `history_length` recent
    catalog tracks with their artists and feedback, a full queue with scores, up to
    `event_id_window` event-id hashes, three artist marks (mean ~1.1 KiB, as measured on the
    changelog after a 30Music replay: benchmarks/listen_path.py's state phase)."""

    def __init__(self, model: ServingModel, settings: Settings, seed: int = 11) -> None:
        self.rng = np.random.default_rng(seed)
        self.track_ids = model.tracks.track_ids
        self.artist_ids = model.tracks.artist_ids
        self.hidden = int(model.dims.hidden)
        self.history = settings.history_length
        self.queue = settings.queue_length
        self.window = settings.event_id_window

    def base(self) -> ListenerState:
        """One listener's state after a long history (its event count is set per version)."""
        rng = self.rng
        heard = int(rng.integers(5, self.history + 1))
        rows = rng.integers(0, len(self.track_ids), heard + self.queue)
        recent, queue = rows[:heard], rows[heard:]
        artists = [str(a) for a in self.artist_ids[recent]]
        marks = [(artists[i], int(rng.integers(1, 4)), 1.7e9 + float(i)) for i in range(3)]
        return ListenerState(
            h=rng.standard_normal(self.hidden).astype(np.float32) * 0.3,
            version=1,
            last_offset=-1,  # a fresh listens topic: the next event (offset 0) is new
            last_ts=1.7e9,
            events=1,
            session_len=min(heard, 12),
            recent=[str(t) for t in self.track_ids[recent]],
            recent_artists=artists,
            queue=[str(t) for t in self.track_ids[queue]],
            event_ids=rng.integers(0, 2**63, min(heard, self.window), dtype=np.uint64),
            recent_kinds=bytes(rng.choice([0, 0, 0, 1, 2], heard).astype(np.uint8)),
            artist_marks=marks,
            queue_scores=rng.random(self.queue).astype(np.float32).tolist(),
        )


def changelog_records(
    maker: StateMaker, listeners: int, versions: int, partitions: int
) -> Iterator[tuple[int, bytes, bytes]]:
    """(partition, key, value) for `versions` records per listener, oldest first: version v of
    listener n has v events, so the newest record says `versions`."""
    keys = [listener_id(n).encode() for n in range(listeners)]
    parts = [partition_of(k, partitions) for k in keys]
    states = [maker.base() for _ in range(listeners)]
    for v in range(1, versions + 1):
        for key, part, state in zip(keys, parts, states, strict=True):
            state.events = state.version = v
            yield part, key, state.to_bytes()


async def write_changelog(
    settings: Settings, maker: StateMaker, listeners: int, versions: int
) -> dict[str, Any]:
    """Produce every record onto the changelog in whole batches per partition, acks awaited."""
    topic = changelog_topic(settings)
    producer = make_producer(settings)
    await producer.start()
    started = time.perf_counter()
    count = size = 0
    try:
        records = list(changelog_records(maker, listeners, versions, settings.topic_partitions))
        count, size = len(records), sum(len(value) for _, _, value in records)
        await asyncio.gather(*await send_in_batches(producer, topic, records))
    finally:
        await producer.stop()
    return {"records": count, "bytes": size, "write_s": time.perf_counter() - started}


def sample_listeners(listeners: int, partitions: int) -> list[str]:
    """The last listener written to each partition: its newest state answers only once the
    whole partition has been read."""
    found: dict[int, str] = {}
    for n in range(listeners):
        found[partition_of(listener_id(n).encode(), partitions)] = listener_id(n)
    return [found[p] for p in sorted(found)]


async def create_changelog(settings: Settings) -> None:
    """The changelog topic as Faust creates it for the table (compact, CHANGELOG_CONFIGS)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.broker)
    await admin.start()
    try:
        configs = {"cleanup.policy": "compact", **CHANGELOG_CONFIGS}
        topic = NewTopic(changelog_topic(settings), settings.topic_partitions, 1, None, configs)
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics([topic])
        for _ in range(100):  # the first sends fail over (NotLeader) until leaders are elected
            (described,) = await admin.describe_topics([topic.name])
            if all(p["leader"] >= 0 for p in described["partitions"]):
                break
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def send_events(settings: Settings, ids: list[str], track_id: str) -> None:
    """One play event per listener onto the listens topic (keyed, so co-partitioned)."""
    producer = make_producer(settings)
    await producer.start()
    try:
        for lid in ids:
            event = {"listener_id": lid, "track_id": track_id, "event": "play", "ts": time.time()}
            await producer.send_and_wait(
                settings.topic_listens, schemas.encode("listen", event), lid.encode()
            )
    finally:
        await producer.stop()


def get(port: int, path: str) -> tuple[int, Any]:
    """(HTTP status, JSON body) of a worker page; (0, None) when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with contextlib.suppress(ValueError):
            return exc.code, json.loads(exc.read())
        return exc.code, None
    except (OSError, ValueError):
        return 0, None


@dataclass
class Timeline:
    """Seconds from a worker's process start (or a peer's kill) to each milestone."""

    up: float = NAN  # /health (liveness) answers ok: imports, model, catalog, Faust started
    assigned: float = NAN  # the group generation this worker serves under is assigned
    held_first: float = NAN  # the first changelog records are in the table
    held_all: float = NAN  # the table holds every listener
    ready: float = NAN  # /health?ready=1 answers 200
    lookup: float = NAN  # every sample listener answers with its newest state
    applied: float = NAN  # the listen event sent before the start is applied (every sample)
    held: list[tuple[float, int]] = field(default_factory=list)  # (s, listeners in the table)

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k != "held"} | {"held": self.held[-50:]}


@dataclass
class Goal:
    """What a watched worker must show: `events` per sample listener, every listener held."""

    samples: list[str]
    events: int
    listeners: int
    generation_after: int = 0  # the assignment to wait for is a later generation than this


def watch(port: int, proc: subprocess.Popen[bytes], goal: Goal, started: float) -> Timeline:
    """Poll a worker (one /health?ready=1 and one sample lookup per tick, so the polling costs
    it little) until it is ready and every sample listener shows `goal.events`; each milestone
    is stamped on the way."""
    t = Timeline()
    pending = list(goal.samples)
    while pending or np.isnan(t.ready):
        now = time.monotonic() - started
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited with {proc.returncode} during recovery")
        if now > GIVE_UP_S:
            raise TimeoutError(f"worker not recovered in {GIVE_UP_S:.0f} s: {t}")
        status, health = get(port, "/health?ready=1")
        if health is not None and "consumer_started" in health:
            _stamp_health(t, now, status, health, goal)
        # one lookup per tick while recovering; once ready, every pending one each tick
        for lid in list(pending if not np.isnan(t.ready) else pending[:1]):
            status, state = get(port, f"/listeners/{lid}")
            if status == 200 and state["events"] >= goal.events:
                pending.remove(lid)
                if not pending:
                    t.lookup = time.monotonic() - started
        time.sleep(POLL_S)
    return t


def _stamp_health(t: Timeline, now: float, status: int, health: dict[str, Any], goal: Goal) -> None:
    """Record the milestones one /health?ready=1 answer shows."""
    if health["consumer_started"] and health["broker_connected"] and np.isnan(t.up):
        t.up = now
    fresh = health["generation"] > goal.generation_after and health["assigned_partitions"]
    if fresh and np.isnan(t.assigned):
        t.assigned = now
    held = int(health.get("listeners_held", 0))
    if held and np.isnan(t.held_first):
        t.held_first = now
    if held >= goal.listeners and np.isnan(t.held_all):
        t.held_all = now
    if not t.held or t.held[-1][1] != held:
        t.held.append((round(now, 3), held))
    if status == 200 and fresh and np.isnan(t.ready):
        t.ready = now


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a worker's whole process group (a crash: nothing flushed, no LeaveGroup)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def restart_after_kill(
    settings: Settings, maker: StateMaker, listeners: int, versions: int, tmp: Path, track: str
) -> dict[str, Any]:
    """Write the states onto a fresh changelog, start a worker (a cold start: it reads them),
    SIGKILL it, send one event per sample listener and start a fresh worker on an empty data dir
    at once; time both starts from outside (`watch`)."""
    asyncio.run(ensure_topics(settings))
    asyncio.run(create_changelog(settings))
    written = asyncio.run(write_changelog(settings, maker, listeners, versions))
    samples = sample_listeners(listeners, settings.topic_partitions)
    port, log = settings.worker_port, tmp / f"{settings.app_id}.log"
    goal = Goal(samples, versions, listeners)
    started = time.monotonic()
    proc = start_worker(settings.with_overrides(worker_data_dir=str(tmp / "a")), log)
    try:
        cold = watch(port, proc, goal, started)
        generation = int(get(port, "/health")[1]["generation"])
    finally:
        kill(proc)
    killed = time.monotonic()
    asyncio.run(send_events(settings, samples, track))
    started = time.monotonic()
    proc = start_worker(settings.with_overrides(worker_data_dir=str(tmp / "b")), log)
    try:
        # a fresh process says generation 0 until assigned; a static member (RADIO_WORKER_NAME)
        # is handed back its assignment in the generation it had, without a rebalance
        goal = Goal(samples, versions + 1, listeners, 0 if settings.worker_name else generation)
        restart = watch(port, proc, goal, started)
        restart.applied = restart.lookup  # the samples' newest state includes the new event
    finally:
        kill(proc)
    return {
        "listeners": listeners,
        "versions": versions,
        **written,
        "cold": cold.as_json(),
        "killed_to_restart_s": started - killed,
        "restart": restart.as_json(),
    }


async def plain_read(settings: Settings) -> dict[str, Any]:
    """The read floor: one aiokafka consumer (no group) reads the whole changelog."""
    topic = changelog_topic(settings)
    parts = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
    consumer = make_consumer(settings, fetch_max_wait_ms=10)
    await consumer.start()
    try:
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        started = time.perf_counter()
        count = 0
        # by position, not count: the cleaner may already have compacted records away
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            count += sum(len(records) for records in batch.values())
        return {"records": count, "seconds": time.perf_counter() - started}
    finally:
        await consumer.stop()


@dataclass
class _Message:
    """The fields of a changelog record that Faust's memory store reads."""

    partition: int
    value: bytes


@dataclass
class _Event:
    """A changelog event as the memory store's apply sees it (key, value, message)."""

    key: bytes
    value: bytes
    message: _Message


def store_apply(
    maker: StateMaker, listeners: int, versions: int, partitions: int
) -> dict[str, Any]:
    """The rebuild floor: Faust's memory store applying the same records in batches of 1,000
    (its recovery buffer), no Kafka, no consumer; only the apply calls are timed."""
    from faust.stores.memory import Store

    store = Store("memory://", None, None, table_name=LISTENER_TABLE)  # type: ignore[arg-type]
    records = changelog_records(maker, listeners, versions, partitions)
    seconds, count = 0.0, 0
    while batch := [_Event(k, v, _Message(p, v)) for p, k, v in itertools.islice(records, 1000)]:
        started = time.perf_counter()
        store.apply_changelog_batch(batch, lambda k: k, lambda v: v)
        seconds += time.perf_counter() - started
        count += len(batch)
    return {"records": count, "seconds": seconds, "listeners": len(store.data)}


def takeover(
    settings: Settings, maker: StateMaker, listeners: int, tmp: Path, track: str
) -> dict[str, Any]:
    """Two workers recover the same states and share the partitions; SIGKILL the second, send
    one event per sample listener and time the survivor until it answers every sample listener
    (the killed one's too) with the event applied."""
    asyncio.run(ensure_topics(settings))
    asyncio.run(create_changelog(settings))
    written = asyncio.run(write_changelog(settings, maker, listeners, 1))
    samples = sample_listeners(listeners, settings.topic_partitions)
    ports = [free_port(), free_port()]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for i, port in enumerate(ports):
            own = settings.with_overrides(worker_port=port, worker_data_dir=str(tmp / f"w{i}"))
            procs.append(start_worker(own, tmp / f"{settings.app_id}-{i}.log"))
        both = _wait_split(ports, procs, samples)
        kill(procs[1])
        killed = time.monotonic()
        asyncio.run(send_events(settings, samples, track))
        goal = Goal(samples, 2, listeners, both["generation"])
        survivor = watch(ports[0], procs[0], goal, killed)
    finally:
        for proc in procs:
            kill(proc)
    return {
        "listeners": listeners,
        "standby_replicas": settings.table_standby_replicas,
        "session_timeout_s": settings.group_session_timeout_s,
        **written,
        **both,
        "survivor": survivor.as_json(),
    }


def _wait_split(
    ports: list[int], procs: list[subprocess.Popen[bytes]], samples: list[str]
) -> dict[str, Any]:
    """Wait until both workers are ready in one generation, split the partitions and answer
    every sample listener; returns what each one holds then."""
    deadline = time.monotonic() + GIVE_UP_S
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("a worker exited before both were serving")
        answers = [get(port, "/health?ready=1") for port in ports]
        gens = {body["generation"] for _, body in answers if body and "generation" in body}
        split = all(status == 200 and body["assigned_partitions"] > 0 for status, body in answers)
        if split and len(gens) == 1 and all(_answers(ports[0], lid) for lid in samples):
            return {
                "generation": gens.pop(),
                "held_before": [body["listeners_held"] for _, body in answers],
                "assigned_before": [body["assigned_partitions"] for _, body in answers],
            }
        time.sleep(0.5)
    raise TimeoutError("two workers never shared the partitions")


def _answers(port: int, lid: str) -> bool:
    """Whether a lookup through this worker (redirected to the owner) finds the listener."""
    return get(port, f"/listeners/{lid}")[0] == 200
