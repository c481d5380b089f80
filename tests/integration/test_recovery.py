"""Two workers on a real broker, one SIGKILLed: the survivor takes over the dead one's
partitions, answers every listener with the events applied before the crash and goes on
applying new ones; with and without standby replicas of the listener table (the time it
takes is measured by benchmarks/recovery.py, not asserted here)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.error
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from radio_engine.broker.launcher import free_port
from radio_engine.player.replay import replay_events
from radio_engine.settings import Settings
from radio_engine.worker.app import CHANGELOG_CONFIGS, LISTENER_TABLE
from tests.integration.conftest import WorkerProcess, start_worker, worker_settings


def health(worker: WorkerProcess) -> tuple[int, dict[str, Any]]:
    """Status and body of /health?ready=1 (a 503 carries the same JSON)."""
    try:
        return 200, worker.get_json("/health?ready=1")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def events_seen(worker: WorkerProcess, listeners: list[str]) -> dict[str, int | None]:
    """Each listener's applied event count as this worker answers it (None: no answer)."""
    seen: dict[str, int | None] = {}
    for lid in listeners:
        try:
            seen[lid] = worker.get_json(f"/listeners/{lid}")["events"]
        except (OSError, ValueError):  # 404, or routed to an owner that is gone
            seen[lid] = None
    return seen


def wait_until_counts(
    worker: WorkerProcess, expected: dict[str, int], timeout: float = 180
) -> dict[str, int | None]:
    """Poll the worker until every listener answers with exactly its expected event count."""
    deadline = time.monotonic() + timeout
    seen: dict[str, int | None] = {}
    while time.monotonic() < deadline:
        assert worker.alive(), worker.log.read_text()[-3000:]
        seen = events_seen(worker, list(expected))
        if seen == expected:
            return seen
        time.sleep(0.5)
    wrong = {k: (v, expected[k]) for k, v in seen.items() if v != expected[k]}
    raise AssertionError(f"{len(wrong)} listeners not as expected (seen, expected): {wrong}")


def wait_ready(
    worker: WorkerProcess, after_generation: int, timeout: float = 180
) -> dict[str, Any]:
    """Poll /health?ready=1 until the worker is ready in a generation after `after_generation`."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status, body = health(worker)
        if status == 200 and body["generation"] > after_generation:
            return body
        time.sleep(0.3)
    raise AssertionError(f"not ready in a new generation: {body}")


def wait_both_serving(workers: list[WorkerProcess], timeout: float = 180) -> list[dict[str, Any]]:
    """Both workers ready in one generation, each with partitions of its own."""
    deadline = time.monotonic() + timeout
    answers: list[tuple[int, dict[str, Any]]] = []
    while time.monotonic() < deadline:
        answers = [health(w) for w in workers]
        generations = {body["generation"] for _, body in answers}
        if len(generations) == 1 and all(
            status == 200 and body["assigned_partitions"] > 0 for status, body in answers
        ):
            return [body for _, body in answers]
        time.sleep(0.5)
    raise AssertionError(f"the two workers never shared the partitions: {answers}")


def topic_configs(settings: Settings, topic: str) -> dict[str, str]:
    """The topic's configs as the broker reports them."""

    async def go() -> dict[str, str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.broker)
        await admin.start()
        try:
            resource = ConfigResource(ConfigResourceType.TOPIC, topic)
            (response,) = await admin.describe_configs([resource])
        finally:
            await admin.close()
        (entry,) = response.resources  # (error, message, type, name, [(key, value, ...)])
        return {config[0]: config[1] for config in entry[4]}

    return asyncio.run(go())


@pytest.mark.parametrize("standbys", [0, 1])
def test_survivor_takes_over_a_killed_workers_listeners(
    kafka_settings: Settings,
    tmp_path: Path,
    slice_model: Path,
    slice_events: list[dict[str, Any]],
    standbys: int,
) -> None:
    settings = worker_settings(
        kafka_settings,
        tmp_path,
        slice_model,
        f"takeover{standbys}-{time.time_ns() % 10**6}",
        table_standby_replicas=standbys,
    )
    other = settings.with_overrides(
        worker_port=free_port(), worker_data_dir=str(tmp_path / "data-other")
    )
    workers: list[WorkerProcess] = []
    try:
        workers.append(start_worker(settings, tmp_path / "survivor.log"))
        workers.append(start_worker(other, tmp_path / "killed.log"))
        survivor, doomed = workers
        before = wait_both_serving(workers)
        # the changelog Faust created compacts, with segments small enough for the cleaner
        configs = topic_configs(settings, f"{settings.app_id}-{LISTENER_TABLE}-changelog")
        assert configs["cleanup.policy"] == "compact"
        assert {k: configs[k] for k in CHANGELOG_CONFIGS} == CHANGELOG_CONFIGS
        asyncio.run(replay_events(settings, slice_events, progress=False))
        expected = dict(Counter(e["listener_id"] for e in slice_events))
        wait_until_counts(survivor, expected)  # through the survivor: it routes to the owner
        doomed_held = health(doomed)[1]["listeners_held"]
        assert doomed_held > 0, "the worker to be killed must own some listeners"
        if standbys == 0:  # each holds exactly the listeners of its own partitions
            assert health(survivor)[1]["listeners_held"] + doomed_held == len(expected)

        doomed.kill()
        # the survivor alone answers every listener, the dead worker's ones included (with a
        # standby copy it may answer before its recovery of them is done: wait for ready too)
        assert wait_until_counts(survivor, expected) == expected
        after = wait_ready(survivor, after_generation=before[0]["generation"])
        assert after["listeners_held"] == len(expected)
        assert wait_until_counts(survivor, expected) == expected
        # and processing goes on for all of them: one more event each
        last = {e["listener_id"]: e for e in slice_events}
        again = [{**e, "ts": e["ts"] + 60.0} for e in last.values()]  # new event ids
        asyncio.run(replay_events(settings, again, progress=False))
        wait_until_counts(survivor, {lid: n + 1 for lid, n in expected.items()})
    finally:
        for worker in workers:
            with contextlib.suppress(Exception):
                worker.stop()
