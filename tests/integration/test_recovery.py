"""Crashes on a real broker. Two workers, one SIGKILLed: the survivor takes over the dead
one's partitions, answers every listener with the events applied before the crash and goes on
applying new ones; with a standby replica of the listener table it resumes from its copy and
re-reads nothing. One worker SIGKILLed and restarted under the same name: it rejoins as the
same static member and its table, read back in bulk, equals the one before the kill. (The time
all this takes is measured by benchmarks/recovery.py, not asserted here.)"""

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


def changelog_records_applied(worker: WorkerProcess, copy: str) -> float:
    """radio_changelog_records_applied_total{copy=...} from the worker's /metrics (0: none)."""
    prefix = f'radio_changelog_records_applied_total{{copy="{copy}"}} '
    for line in worker.get("/metrics").decode().splitlines():
        if line.startswith(prefix):
            return float(line.removeprefix(prefix))
    return 0.0


def wait_settled(worker: WorkerProcess, listeners: int, timeout: float = 120) -> float:
    """Wait until the worker holds `listeners` states and its standby copy has stopped
    growing for 2 s (caught up with the changelog); returns the standby records applied."""
    deadline = time.monotonic() + timeout
    last, since = -1.0, time.monotonic()
    while time.monotonic() < deadline:
        applied = changelog_records_applied(worker, "standby")
        if applied != last:
            last, since = applied, time.monotonic()
        elif health(worker)[1]["listeners_held"] == listeners and time.monotonic() - since > 2:
            return applied
        time.sleep(0.3)
    raise AssertionError(f"the copy never settled: {health(worker)[1]}")


@pytest.mark.parametrize("standbys", [0, 1])
def test_survivor_takes_over_a_killed_workers_listeners(
    kafka_settings: Settings,
    tmp_path: Path,
    slice_model: Path,
    slice_events: list[dict[str, Any]],
    standbys: int,
) -> None:
    """The doomed worker applies every event alone, the survivor joins (reading its share of
    the partitions and, with a standby replica, copying the doomed worker's), then the doomed
    one is SIGKILLed. With a copy the survivor resumes the dead partitions from it and reads
    no changelog record again; without one it re-reads every record of them."""
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
        workers.append(start_worker(other, tmp_path / "killed.log"))
        doomed = workers[0]
        wait_ready(doomed, after_generation=0)
        # the changelog Faust created compacts, with segments small enough for the cleaner
        configs = topic_configs(settings, f"{settings.app_id}-{LISTENER_TABLE}-changelog")
        assert configs["cleanup.policy"] == "compact"
        assert {k: configs[k] for k in CHANGELOG_CONFIGS} == CHANGELOG_CONFIGS
        asyncio.run(replay_events(settings, slice_events, progress=False))
        expected = dict(Counter(e["listener_id"] for e in slice_events))
        wait_until_counts(doomed, expected)
        workers.append(start_worker(settings, tmp_path / "survivor.log"))
        survivor = workers[1]
        before = wait_both_serving([survivor, doomed])
        wait_until_counts(survivor, expected)  # through the survivor: it routes to the owner
        doomed_held = health(doomed)[1]["listeners_held"]
        assert doomed_held > 0, "the worker to be killed must own some listeners"
        if standbys == 0:  # each holds exactly the listeners of its own partitions
            assert health(survivor)[1]["listeners_held"] + doomed_held == len(expected)
            assert changelog_records_applied(survivor, "standby") == 0
        else:  # the survivor holds its own listeners and a copy of the doomed worker's
            assert wait_settled(survivor, len(expected)) > 0
        read_before = changelog_records_applied(survivor, "active")

        doomed.kill()
        # the survivor alone answers every listener, the dead worker's ones included (with a
        # standby copy it may answer before its recovery of them is done: wait for ready too)
        assert wait_until_counts(survivor, expected) == expected
        after = wait_ready(survivor, after_generation=before[0]["generation"])
        assert after["listeners_held"] == len(expected)
        assert wait_until_counts(survivor, expected) == expected
        read = changelog_records_applied(survivor, "active") - read_before
        if standbys == 0:  # the dead partitions re-read: at least one record per listener
            assert read >= doomed_held
        else:  # resumed from the copy: nothing re-read, no rebuild
            assert read == 0
        # and processing goes on for all of them: one more event each
        last = {e["listener_id"]: e for e in slice_events}
        again = [{**e, "ts": e["ts"] + 60.0} for e in last.values()]  # new event ids
        asyncio.run(replay_events(settings, again, progress=False))
        wait_until_counts(survivor, {lid: n + 1 for lid, n in expected.items()})
    finally:
        for worker in workers:
            with contextlib.suppress(Exception):
                worker.stop()


def states(worker: WorkerProcess, listeners: list[str]) -> dict[str, Any]:
    """Every listener's whole state view (/listeners/<id>) as this worker answers it."""
    return {lid: worker.get_json(f"/listeners/{lid}") for lid in listeners}


def test_a_restarted_worker_holds_every_listener_exactly_as_before_the_kill(
    kafka_settings: Settings,
    tmp_path: Path,
    slice_model: Path,
    slice_events: list[dict[str, Any]],
) -> None:
    """1,500 listeners (the slice's real sessions, each replayed for 25 listener ids), several
    changelog records each; SIGKILL, restart with the same worker name: the recovered table,
    read in bulk, answers every listener's whole state exactly as before the kill; the static
    member got its partitions back without a rebalance (same generation); processing goes on."""
    settings = worker_settings(
        kafka_settings,
        tmp_path,
        slice_model,
        f"restart-{time.time_ns() % 10**6}",
        worker_name="w0",
    )
    events = [
        {**e, "listener_id": f"{e['listener_id']}-{copy}"}
        for copy in range(25)
        for e in slice_events
    ]
    expected = dict(Counter(e["listener_id"] for e in events))
    worker = start_worker(settings, tmp_path / "first.log")
    try:
        asyncio.run(replay_events(settings, events, progress=False))
        wait_until_counts(worker, expected)
        first = wait_ready(worker, after_generation=0)
        before = states(worker, list(expected))
    finally:
        worker.kill()
    assert len(before) == 1500 and first["listeners_held"] == 1500

    worker = start_worker(settings, tmp_path / "restarted.log")
    try:
        ready = wait_ready(worker, after_generation=0)
        assert ready["generation"] == first["generation"]  # static member: no rebalance
        assert ready["listeners_held"] == 1500
        assert changelog_records_applied(worker, "active") >= 1500  # the bulk path rebuilt it
        assert states(worker, list(expected)) == before
        last = {e["listener_id"]: e for e in events}
        again = [{**e, "ts": e["ts"] + 60.0} for e in last.values()]
        asyncio.run(replay_events(settings, again, progress=False))
        wait_until_counts(worker, {lid: n + 1 for lid, n in expected.items()})
    finally:
        worker.stop()
