"""`radio-engine verify`: crash the workers while events flow, then prove nothing was lost or
doubled (in the spirit of Kafka Streams' exactly-once system test).

A generator sends numbered events for many listeners (with event_ids, some retried like a
player) at a steady rate. Meanwhile two or more workers run; one is SIGKILLed at seeded random
moments and restarted on its own data, a worker is added and one removed, so partitions move;
the broker itself may be SIGKILLed and started again (the sender then resends what was not
acked, as a player would: the event_ids make that harmless).
When every worker has caught up, the changelog and the queue topic are read back and checked
against an offline replay of the same events (checks.py). Last, a worker with no local data
rebuilds the state from the changelog, and its lookups must equal the changelog's states.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from radio_engine.broker.launcher import RunningBroker, free_port
from radio_engine.broker.topics import ensure_topics
from radio_engine.kafka_security import security_kwargs
from radio_engine.listeners.state import ListenerState
from radio_engine.model.runtime import ServingModel
from radio_engine.player.kafka_io import make_consumer, make_producer
from radio_engine.settings import Settings
from radio_engine.verify.checks import Verdict, check_listeners, offline_replay
from radio_engine.verify.plan import plan_events
from radio_engine.worker.process import WorkerProcess, start_worker

#: the Faust table whose changelog holds every listener's state (worker/app.py)
LISTENER_TABLE = "listeners"


@dataclass(frozen=True)
class Chaos:
    """How hard the run is: listeners x events, workers, SIGKILLs, and the send rate."""

    listeners: int = 200
    events_per_listener: int = 1000
    workers: int = 2
    kills: int = 5
    rate: float = 1500.0
    seed: int = 1
    catch_up_s: float = 300.0
    broker_restarts: int = 0


@dataclass
class Report:
    """The run's figures and the verdict."""

    events_sent: int = 0
    listeners: int = 0
    kills: int = 0
    broker_restarts: int = 0
    resent: int = 0
    joins: int = 0
    leaves: int = 0
    send_s: float = 0.0
    catch_up_s: float = 0.0
    rebuild_s: float = 0.0
    rebuilt_checked: int = 0
    rebuilt_mismatches: int = 0
    verdict: Verdict = field(default_factory=Verdict)
    log: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.verdict.ok and self.rebuilt_mismatches == 0

    def table(self) -> str:
        """The figures as a table a person reads at the end of the run."""
        v = self.verdict
        rows = [
            ("events sent (with player retries)", f"{self.events_sent:,}"),
            ("listeners", f"{self.listeners:,}"),
            ("worker SIGKILLs (then restarted)", str(self.kills)),
            ("broker SIGKILLs (then restarted)", str(self.broker_restarts)),
            ("events resent after a failed send", f"{self.resent:,}"),
            ("workers added / removed (rebalances)", f"{self.joins} / {self.leaves}"),
            ("seconds sending / catching up", f"{self.send_s:.1f} / {self.catch_up_s:.1f}"),
            ("listeners checked", f"{v.checked:,} of {v.listeners:,}"),
            ("mismatches", str(sum(v.mismatches.values()))),
            *((f"  {name}", str(n)) for name, n in sorted(v.mismatches.items())),
            ("rebuilt from the changelog (fresh data dir)", f"{self.rebuilt_checked} listeners"),
            ("  rebuild mismatches / seconds", f"{self.rebuilt_mismatches} / {self.rebuild_s:.1f}"),
            ("verdict", "PASS: none lost, none doubled" if self.ok else "FAIL"),
        ]
        width = max(len(name) for name, _ in rows)
        lines = [f"{name:<{width}}  {value}" for name, value in rows]
        return "\n".join([*lines, *(f"  ! {e}" for e in v.examples)])


class Workers:
    """The run's worker processes: start, SIGKILL and restart, add, remove."""

    def __init__(self, settings: Settings, workdir: Path, say: Callable[[str], None]) -> None:
        self.settings, self.workdir, self.say = settings, workdir, say
        self.live: dict[int, WorkerProcess] = {}
        self.count = 0

    def start(self, n: int | None = None, data: Path | None = None) -> WorkerProcess:
        """Start worker n (a new one when None) on its own port and data dir."""
        if n is None:
            n, self.count = self.count, self.count + 1
        settings = self.settings.with_overrides(
            worker_port=free_port(),
            worker_data_dir=str(data or self.workdir / f"worker-{n}"),
        )
        worker = start_worker(settings, self.workdir / f"worker-{n}.log")
        self.live[n] = worker
        return worker

    def kill_and_restart(self, rng: random.Random) -> None:
        n = rng.choice(sorted(self.live))
        self.say(f"SIGKILL worker {n}")
        self.live.pop(n).kill()
        time.sleep(rng.uniform(0.5, 2.0))
        self.start(n)
        self.say(f"worker {n} restarted")

    def remove(self, rng: random.Random) -> None:
        n = rng.choice(sorted(self.live))
        self.say(f"worker {n} leaves (SIGTERM)")
        self.live.pop(n).stop()

    def stop_all(self) -> None:
        for worker in self.live.values():
            worker.stop()
        self.live.clear()


def verify(
    base: Settings,
    model_dir: Path,
    chaos: Chaos,
    workdir: Path,
    say: Callable[[str], None] = print,
    broker: RunningBroker | None = None,
) -> Report:
    """One verification run against the broker `base.broker`; topics and group of its own.
    `broker` (one this process started) is needed for `chaos.broker_restarts`."""
    if chaos.broker_restarts and (broker is None or broker.paths is None):
        raise ValueError("broker restarts need a broker this run started (no --broker)")
    run_id = f"verify-{time.time_ns() % 10**9}"
    settings = base.for_app(run_id, model_dir=str(model_dir))
    asyncio.run(ensure_topics(settings))
    model = ServingModel(model_dir)
    events = plan_events(
        list(model.tracks.track_ids), chaos.listeners, chaos.events_per_listener, chaos.seed
    )
    report = Report(events_sent=len(events), listeners=chaos.listeners)

    def note(line: str) -> None:
        report.log.append(line)
        say(f"    {line}")

    workers = Workers(settings, workdir, note)
    try:
        for _ in range(chaos.workers):
            workers.start()
        say(f"==> {chaos.workers} workers up; sending {len(events):,} events")
        asyncio.run(_send_with_chaos(settings, events, chaos, workers, report, broker))
        say(f"==> sent in {report.send_s:.1f} s; waiting for the workers to catch up")
        started = time.monotonic()
        asyncio.run(_wait_caught_up(settings, chaos.catch_up_s))
        report.catch_up_s = time.monotonic() - started
        states = read_states(settings)
        queues = read_queues(settings)
        say(f"==> read {len(states):,} states and the queue topic; replaying offline")
        replay = offline_replay(settings, model, events)
        report.verdict = check_listeners(events, states, queues, replay)
        workers.stop_all()
        _check_rebuild(workers, states, report, workdir)
    finally:
        workers.stop_all()
    return report


async def _send_with_chaos(
    settings: Settings,
    events: list[dict[str, Any]],
    chaos: Chaos,
    workers: Workers,
    report: Report,
    broker: RunningBroker | None,
) -> None:
    """Send at `chaos.rate` while the kills and the membership changes happen on schedule."""
    rng = random.Random(chaos.seed)
    duration = len(events) / chaos.rate
    actions: list[tuple[float, str]] = [(rng.uniform(0.1, 0.9), "kill") for _ in range(chaos.kills)]
    actions += [(0.3, "join"), (0.6, "leave")]
    actions += [(rng.uniform(0.2, 0.8), "broker") for _ in range(chaos.broker_restarts)]
    actions.sort()
    started = time.monotonic()

    async def chaos_task() -> None:
        for at, action in actions:
            await asyncio.sleep(max(0.0, started + at * duration - time.monotonic()))
            if action == "kill":
                await asyncio.to_thread(workers.kill_and_restart, rng)
                report.kills += 1
            elif action == "broker" and broker is not None:
                workers.say("SIGKILL the broker")
                await asyncio.to_thread(broker.crash)
                await asyncio.sleep(rng.uniform(1.0, 3.0))
                await asyncio.to_thread(broker.start_again)
                workers.say("broker restarted")
                report.broker_restarts += 1
            elif action == "join":
                await asyncio.to_thread(workers.start)
                workers.say("a worker joins")
                report.joins += 1
            else:
                await asyncio.to_thread(workers.remove, rng)
                report.leaves += 1

    chaos_run = asyncio.create_task(chaos_task())
    producer = make_producer(settings)
    await producer.start()
    try:
        step = max(1, int(chaos.rate / 10))
        for i in range(0, len(events), step):
            chunk = events[i : i + step]
            while True:
                try:
                    sends = [
                        await producer.send(
                            settings.topic_listens, orjson.dumps(e), key=e["listener_id"].encode()
                        )
                        for e in chunk
                    ]
                    await asyncio.gather(*sends)  # acked by the broker: really sent
                    break
                except KafkaError as exc:  # the broker is down: resend, as a player would
                    workers.say(f"send failed ({type(exc).__name__}); resending {len(chunk)}")
                    report.resent += len(chunk)
                    await asyncio.sleep(1.0)
            await asyncio.sleep(max(0.0, started + (i + step) / chaos.rate - time.monotonic()))
        report.send_s = time.monotonic() - started
    finally:
        await producer.stop()
    await chaos_run


async def _wait_caught_up(settings: Settings, timeout: float) -> None:
    """Until the group's committed offsets reach the end of every listens partition."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.broker, **security_kwargs(settings))
    consumer = make_consumer(settings, settings.topic_listens)
    await admin.start()
    await consumer.start()
    try:
        tps = sorted(await _assigned(consumer))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ends = await consumer.end_offsets(tps)
            committed = await admin.list_consumer_group_offsets(settings.app_id)
            behind = sum(ends[tp] - (committed[tp].offset if tp in committed else 0) for tp in tps)
            if behind <= 0:
                return
            await asyncio.sleep(1.0)
        raise TimeoutError(f"the workers did not catch up within {timeout:.0f} s")
    finally:
        await consumer.stop()
        await admin.close()


async def _assigned(consumer: AIOKafkaConsumer, timeout: float = 10.0) -> set[TopicPartition]:
    """The partitions a group-less consumer was given (all of its topics'), once it has them."""
    deadline = time.monotonic() + timeout
    while not consumer.assignment():
        if time.monotonic() > deadline:
            raise TimeoutError("no partitions assigned: does the topic exist?")
        await asyncio.sleep(0.1)
    return set(consumer.assignment())


def _read_topic(settings: Settings, topic: str) -> list[Any]:
    """Every record of a topic, in partition order."""

    async def go() -> list[Any]:
        consumer = make_consumer(settings, topic)
        await consumer.start()
        try:
            ends = await consumer.end_offsets(list(await _assigned(consumer)))
            out: list[Any] = []
            left = {tp: end for tp, end in ends.items() if end > 0}
            while left:
                batch = await consumer.getmany(timeout_ms=500)
                out += [r for records in batch.values() for r in records]
                for tp in list(left):
                    if await consumer.position(tp) >= left[tp]:
                        del left[tp]
            return out
        finally:
            await consumer.stop()

    return asyncio.run(go())


def read_states(settings: Settings) -> dict[str, ListenerState]:
    """Each listener's last state on the table's changelog."""
    topic = f"{settings.app_id}-{LISTENER_TABLE}-changelog"
    return {r.key.decode(): ListenerState.from_bytes(r.value) for r in _read_topic(settings, topic)}


def read_queues(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """Every queue message per listener, in the order published."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in _read_topic(settings, settings.topic_queues):
        out.setdefault(r.key.decode(), []).append(orjson.loads(r.value))
    return out


def _check_rebuild(
    workers: Workers, states: dict[str, ListenerState], report: Report, workdir: Path
) -> None:
    """A worker with no local data must serve the changelog's states (a sample of listeners)."""
    fresh = workdir / "fresh-data"
    shutil.rmtree(fresh, ignore_errors=True)
    started = time.monotonic()
    worker = workers.start(data=fresh)
    sample = sorted(states)[:: max(1, len(states) // 25)]
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:  # ready: partitions assigned and the table recovered
            try:
                worker.get("/health?ready=1")
                break
            except OSError:
                time.sleep(0.5)
        pending = set(sample)
        while pending and time.monotonic() < deadline:
            for lid in sorted(pending):
                try:
                    view = worker.get_json(f"/listeners/{lid}")
                except OSError:
                    continue
                pending.discard(lid)
                report.rebuilt_mismatches += not _same_state(view, states[lid])
            time.sleep(0.5)
        report.rebuild_s = time.monotonic() - started
        report.rebuilt_checked = len(sample) - len(pending)
        report.rebuilt_mismatches += len(pending)
    finally:
        worker.stop()


def _same_state(view: dict[str, Any], state: ListenerState) -> bool:
    """Whether a worker's /listeners/<id> view shows this state (counts, version, exact h)."""
    h = np.asarray(view["h"], dtype=np.float32)
    return (
        view["events"] == state.events
        and view["version"] == state.version
        and h.shape == state.h.shape
        and bool(np.array_equal(h, state.h))
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    """The CLI: verify on the broker given (or a fresh dev broker); exit 0 only on PASS."""
    from radio_engine.broker.launcher import broker_for

    model_dir = Path(args.model) if args.model else settings.model_path
    if not (model_dir / "manifest.json").exists():
        raise SystemExit(
            f"radio-engine verify: no model at {model_dir}; train one (`radio-engine train`) "
            "or run the demo once"
        )
    chaos = Chaos(
        listeners=args.listeners,
        events_per_listener=args.events_per_listener,
        workers=args.workers,
        kills=args.kills,
        rate=args.rate,
        seed=args.seed,
        broker_restarts=0 if args.broker else args.broker_restarts,  # only a broker we own
    )
    # the sender's retries while the broker is down are counted in the report, not printed
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    workdir = Path(tempfile.mkdtemp(prefix="radio-verify-"))
    with broker_for(settings, isolated=not args.broker) as broker:
        print(f"==> broker {broker.settings.broker}; work dir {workdir}", flush=True)
        report = verify(broker.settings, model_dir, chaos, workdir, broker=broker)
    print(report.table(), flush=True)
    return 0 if report.ok else 1
