"""The phases that need Kafka (1 to 6), run in one broker's lifetime."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np

from listen_bench.backlog import backlog_throughput, say_throughput
from listen_bench.baselines import aiokafka_loop, faust_counter
from listen_bench.common import PARTITIONS
from listen_bench.kafka_io import encode_events
from listen_bench.latency import paced_latency
from listen_bench.runner import Run
from listen_bench.state import state_bytes
from listen_bench.workers import running_workers, worker_settings
from radio_engine.broker.launcher import running_broker
from radio_engine.settings import Settings


async def engine_runs(
    base: Settings,
    model: Path,
    events: list[dict[str, Any]],
    args: argparse.Namespace,
    tmp: Path,
    out: dict[str, Any],
) -> None:
    """One worker: backlog throughput, state bytes, then the paced latency run; each result goes
    into `out` as soon as it is measured, so a later failure keeps the earlier figures."""
    settings = worker_settings(base, model, f"bench-one-{time.time_ns()}", tmp)
    encoded = encode_events(events)
    async with running_workers(settings, 1, tmp, events[0]["track_id"]) as workers:
        out["engine"] = await backlog_throughput(workers, encoded)
        say_throughput("engine, 1 worker", out["engine"])
        out["state"] = await state_bytes(settings)
        rate = out["engine"]["events_per_s"] / 2
        if not np.isfinite(rate) or rate <= 0:
            raise RuntimeError("engine rate unknown: no latency run")
        print(f"  latency: {rate:.0f} events/s for {args.seconds:g} s, fresh listeners")
        out["latency"] = await paced_latency(workers, events, rate, args.seconds)


async def two_worker_run(
    base: Settings, model: Path, events: list[dict[str, Any]], tmp: Path
) -> dict[str, Any]:
    """Two workers in one group on a fresh 8-partition listens topic, both serving first."""
    settings = worker_settings(base, model, f"bench-two-{time.time_ns()}", tmp)
    async with running_workers(settings, 2, tmp, events[0]["track_id"]) as workers:
        result = await backlog_throughput(workers, encode_events(events))
    say_throughput("engine, 2 workers", result)
    return result


def broker_phases(
    run: Run, base: Settings, model: Path, events: list, args: Any, tmp: Path
) -> None:
    """Everything that needs the broker, in one broker's lifetime."""
    with running_broker(base, isolated=True) as settings:
        settings = settings.with_overrides(topic_partitions=PARTITIONS)
        print(f"broker up at {settings.broker}", flush=True)
        run.phase(
            "engine",
            lambda: asyncio.run(engine_runs(settings, model, events, args, tmp, run.results)),
        )
        encoded = encode_events(events)
        run.phase("faust", lambda: asyncio.run(faust_counter(settings, encoded, tmp)))
        run.phase("aiokafka", lambda: asyncio.run(aiokafka_loop(settings, encoded)))
        if not args.skip_two_workers:
            run.phase("two", lambda: asyncio.run(two_worker_run(settings, model, events, tmp)))
