"""Worker processes: their environment, start and stop, readiness probes, and progress polling."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from listen_bench.common import PARTITIONS, PROBE, ROOT, STALL_S
from listen_bench.kafka_io import TopicReader, parse_queue
from listen_bench.metrics import http_get, scrape_all, total
from radio_engine import schemas
from radio_engine.broker.launcher import free_port
from radio_engine.broker.topics import ensure_topics
from radio_engine.player.kafka_io import make_producer
from radio_engine.settings import Settings
from radio_engine.worker.process import settings_env


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment of a worker: every RADIO_* variable from `settings`, BLAS on one thread."""
    return {**settings_env(settings), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def start_worker(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    """Start `radio-engine worker` with these settings; its output goes to `log`."""
    with open(log, "ab") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "radio_engine.cli", "worker"],
            env=worker_env(settings),
            cwd=ROOT,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM this child, SIGKILL it if it does not stop within 30 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def check_alive(procs: list[subprocess.Popen[bytes]], logs: list[Path]) -> None:
    """Raise with the log's tail if a child has exited."""
    for proc, log in zip(procs, logs, strict=True):
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"process exited with {proc.returncode}; {log}:\n{tail}")


async def wait_healthy(
    ports: list[int], procs: list[Any], logs: list[Path], timeout: float
) -> None:
    """Wait until every worker's /health answers status ok."""
    deadline = time.monotonic() + timeout
    waiting = list(ports)
    while waiting:
        check_alive(procs, logs)
        if time.monotonic() > deadline:
            raise TimeoutError(f"workers on ports {waiting} not healthy in {timeout:.0f} s")
        with contextlib.suppress(OSError, ValueError):
            if (
                json.loads(await asyncio.to_thread(http_get, waiting[0], "/health"))["status"]
                == "ok"
            ):
                waiting.pop(0)
                continue
        await asyncio.sleep(0.5)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc), NaN elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


@dataclass
class Workers:
    """Worker processes sharing one app id, their ports and logs, and a reader of their queues."""

    settings: Settings
    procs: list[subprocess.Popen[bytes]]
    ports: list[int]
    logs: list[Path]
    queues: TopicReader | None = None

    def alive(self) -> None:
        """Raise if a worker has exited."""
        check_alive(self.procs, self.logs)

    def cpu(self) -> list[float]:
        """CPU seconds each worker has used so far."""
        return [cpu_seconds(p.pid) for p in self.procs]


def worker_settings(base: Settings, model: Path, app_id: str, tmp: Path) -> Settings:
    """Settings for a fresh app id: its own topics, so one run never reads another's records."""
    return base.for_app(
        app_id,
        model_dir=str(model),
        topic_partitions=PARTITIONS,
        worker_data_dir=str(tmp / f"{app_id}-data"),
    )


@contextlib.asynccontextmanager
async def running_workers(
    settings: Settings, count: int, tmp: Path, probe_track: str
) -> AsyncIterator[Workers]:
    """Start `count` workers (same app id, one group), wait until each serves, stop them after."""
    await ensure_topics(settings)
    workers = Workers(settings, [], [], [])
    try:
        for i in range(count):
            port = free_port()
            own = settings.with_overrides(
                worker_port=port, worker_data_dir=f"{settings.worker_data_dir}-{i}"
            )
            workers.logs.append(tmp / f"{settings.app_id}-{i}.log")
            workers.procs.append(start_worker(own, workers.logs[-1]))
            workers.ports.append(port)
        await wait_healthy(workers.ports, workers.procs, workers.logs, timeout=300)
        workers.queues = await TopicReader(settings, settings.topic_queues, parse_queue).start()
        rounds = await probe_until_serving(workers, probe_track)
        print(f"  {count} worker(s) serving every partition after {rounds} probe round(s)")
        yield workers
    finally:
        for proc in workers.procs:
            stop_process(proc)
        if workers.queues is not None:
            await workers.queues.stop()


async def probe_until_serving(workers: Workers, track_id: str, timeout: float = 300) -> int:
    """Send one probe event to every partition per round until each probe has a queue and each
    worker has processed at least one (so all are in the group and past table recovery).
    """
    assert workers.queues is not None
    producer = make_producer(workers.settings)
    await producer.start()
    deadline = time.monotonic() + timeout
    try:
        for rnd in range(1, 1000):
            ids = [f"{PROBE}{rnd}-{p}" for p in range(PARTITIONS)]
            for p, lid in enumerate(ids):
                event = {
                    "listener_id": lid,
                    "track_id": track_id,
                    "event": "play",
                    "ts": time.time(),
                }
                value = schemas.encode("listen", event)
                await producer.send_and_wait(
                    workers.settings.topic_listens, value, lid.encode(), partition=p
                )
            answered = await _wait_answered(
                workers, set(ids), min(30.0, deadline - time.monotonic())
            )
            counts = [
                total(await scrape_all([p]), "radio_listen_events_total") for p in workers.ports
            ]
            if answered and all(c > 0 for c in counts):
                return rnd
            if time.monotonic() > deadline:
                raise TimeoutError(f"workers not all serving after {timeout:.0f} s: {counts}")
            await asyncio.sleep(2.0)
    finally:
        await producer.stop()
    raise AssertionError("unreachable")


async def _wait_answered(workers: Workers, ids: set[str], timeout: float) -> bool:
    """Read queues until every listener in `ids` has one; False on timeout."""
    assert workers.queues is not None
    deadline = time.monotonic() + max(timeout, 1.0)
    while time.monotonic() < deadline:
        await workers.queues.poll()
        if ids <= {q.listener for q in workers.queues.items[-5000:]}:
            return True
        workers.alive()
    return False


async def wait_processed(workers: Workers, target: float) -> float:
    """Poll the workers' radio_listen_events_total until it reaches `target`; returns its value.

    Fails when the count has not moved for STALL_S seconds. Does not read Kafka meanwhile, so the
    benchmark takes no CPU from the workers while they run.
    """
    last, moved = -1.0, time.monotonic()
    while True:
        workers.alive()
        count = total(await scrape_all(workers.ports), "radio_listen_events_total")
        if count >= target:
            return count
        if count != last:
            last, moved = count, time.monotonic()
        elif time.monotonic() - moved > STALL_S:
            raise RuntimeError(f"workers stalled at {count:.0f} of {target:.0f} events")
        await asyncio.sleep(0.25)
