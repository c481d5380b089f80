"""Integration tests run against a real Apache Kafka broker launched for the test session."""

from __future__ import annotations

import asyncio
import csv
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from radio_engine.broker.launcher import free_port, running_broker
from radio_engine.broker.topics import ensure_topics_sync
from radio_engine.player.kafka_io import make_consumer, make_producer
from radio_engine.player.replay import read_events
from radio_engine.settings import Settings
from radio_engine.worker.process import WorkerProcess, start_worker

__all__ = ["WorkerProcess", "start_worker"]  # the tests' worker handle comes from the package

HERE = Path(__file__).parent
EVENTS_CSV = Settings().data_path / "30music" / "events.csv"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration needs the real broker: mark it so."""
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kafka_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings pointing at a fresh real Kafka (free ports, scratch data) with topics created."""
    home = Settings.from_env()
    with running_broker(home, isolated=True) as settings:
        settings = settings.with_overrides(topic_partitions=4)
        ensure_topics_sync(settings)
        yield settings


@pytest.fixture(scope="session")
def slice_events() -> list[dict[str, Any]]:
    """The first 1,200 real 30Music events of 60 listeners, in time order."""
    return read_events(EVENTS_CSV, limit=1200, listeners=60)


@pytest.fixture(scope="session")
def slice_model(
    tmp_path_factory: pytest.TempPathFactory, slice_events: list[dict[str, Any]]
) -> Path:
    """A model directory (untrained weights, the real export path) over the slice's tracks."""
    from radio_engine.training.export import export_random_model

    tracks: dict[str, str] = {}
    with open(EVENTS_CSV, newline="") as f:
        for row in csv.DictReader(f):
            tracks.setdefault(row["track_id"], row["artist_id"])
            if len(tracks) >= 3000:
                break
    for e in slice_events:
        tracks.setdefault(e["track_id"], e.get("artist_id", ""))
    return export_random_model(
        tmp_path_factory.mktemp("model") / "m", list(tracks), list(tracks.values())
    )


# -- a real worker process against the real broker ---------------------------------------------


def worker_settings(
    base: Settings, tmp: Path, model_dir: Path, app_id: str, **overrides: object
) -> Settings:
    """Settings for one test's worker: its own app id (group, changelog), port and data dir."""
    return base.for_app(
        app_id,
        model_dir=str(model_dir),
        worker_port=free_port(),
        worker_data_dir=str(tmp / f"data-{app_id}"),
        **overrides,
    )


# -- reading topics -----------------------------------------------------------------------------
def consume(
    settings: Settings, topic: str, done: Callable[[list[Any]], bool], timeout: float = 60
) -> list[Any]:
    """Read a topic from the start until `done(records)` holds; fail on timeout."""

    async def go() -> list[Any]:
        consumer = make_consumer(settings, topic)
        await consumer.start()
        got: list[Any] = []
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=300)
                got += [r for records in batch.values() for r in records]
                if done(got):
                    return got
        finally:
            await consumer.stop()
        raise AssertionError(f"{topic}: condition not met in {timeout} s; {len(got)} records read")

    return asyncio.run(go())


def consume_all(settings: Settings, topic: str, quiet_s: float = 2.0) -> list[Any]:
    """Everything on a topic: read until nothing new arrives for `quiet_s` seconds."""
    state = {"n": -1, "since": time.monotonic()}

    def settled(got: list[Any]) -> bool:
        if len(got) != state["n"]:
            state["n"], state["since"] = len(got), time.monotonic()
        return len(got) > 0 and time.monotonic() - state["since"] > quiet_s

    return consume(settings, topic, settled)


def wait_for_metric(worker: WorkerProcess, line: str, timeout: float = 90) -> None:
    """Poll /metrics until it has this exact sample line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if line in worker.get("/metrics").decode().splitlines():
            return
        time.sleep(0.3)
    raise AssertionError(f"metric {line!r} not reached")


def send_raw(settings: Settings, topic: str, messages: list[tuple[bytes | None, bytes]]) -> None:
    async def go() -> None:
        producer = make_producer(settings)
        await producer.start()
        try:
            for key, value in messages:
                await producer.send_and_wait(topic, value=value, key=key)
        finally:
            await producer.stop()

    asyncio.run(go())
