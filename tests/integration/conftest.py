"""Integration tests run against a real Apache Kafka broker launched for the test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from radio_engine.broker.launcher import running_broker
from radio_engine.broker.topics import ensure_topics_sync
from radio_engine.settings import Settings

HERE = Path(__file__).parent


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
