"""Create the engine's topics, idempotently, with the partitions and configs each one needs."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from radio_engine.broker.config import MESSAGE_MAX_BYTES
from radio_engine.kafka_security import security_kwargs
from radio_engine.settings import Settings


class TopicCreationFailed(RuntimeError):
    """The broker refused to create a topic (too few brokers for the replication factor, no
    permission, a bad config): one line per topic, the broker's own words included."""


@dataclass(frozen=True)
class TopicSpec:
    """One topic: name, partitions and topic-level configs."""

    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)
    replication_factor: int = 1


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """The engine's topics: keyed by listener (partitioned wide) or by track (compacted), each
    with the replication factor and min.insync.replicas of the settings."""
    return [
        TopicSpec(
            s.name,
            s.partitions,
            {**s.configs, "min.insync.replicas": str(settings.topic_min_insync_replicas)},
            settings.topic_replication_factor,
        )
        for s in _base_specs(settings)
    ]


def _base_specs(settings: Settings) -> list[TopicSpec]:
    wide = settings.topic_partitions
    return [
        TopicSpec(settings.topic_listens, wide),
        TopicSpec(settings.topic_queues, wide),
        TopicSpec(settings.topic_audio, 1, {"max.message.bytes": str(MESSAGE_MAX_BYTES)}),
        TopicSpec(
            settings.topic_tracks,
            1,
            {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1"},
        ),
        TopicSpec(settings.topic_dead_letters, 1, {"max.message.bytes": str(MESSAGE_MAX_BYTES)}),
    ]


async def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> list[str]:
    """Create whichever of the engine's topics are missing; returns the names created."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.broker,
        request_timeout_ms=int(timeout_s * 1000),
        **security_kwargs(settings),
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in topic_specs(settings) if spec.name not in existing]
        if missing:
            # another process may have created them first: that is fine
            with contextlib.suppress(TopicAlreadyExistsError):
                response = await admin.create_topics(
                    [
                        NewTopic(
                            s.name, s.partitions, s.replication_factor, topic_configs=s.configs
                        )
                        for s in missing
                    ]
                )
                raise_topic_errors(response.topic_errors)
        await _check_copartitioned(admin, settings.topic_listens, settings.topic_queues)
        return [s.name for s in missing]
    finally:
        await admin.close()


def raise_topic_errors(topic_errors: list[tuple[Any, ...]]) -> None:
    """Raise TopicCreationFailed for the topics a CreateTopics response refused (a topic that
    already exists is not an error: another process made it first)."""
    refused = []
    for topic, code, *message in topic_errors:
        error = for_code(code)
        if code == 0 or error is TopicAlreadyExistsError:
            continue
        detail = message[0] if message and message[0] else error.description
        refused.append(f"{topic}: {error.message} ({detail})")
    if refused:
        raise TopicCreationFailed("the broker refused to create " + "; ".join(refused))


async def _check_copartitioned(admin: AIOKafkaAdminClient, listens: str, queues: str) -> None:
    """A listener's queue goes to the partition number its events came from: the queues topic
    must have as many partitions as the listens topic."""
    described = await admin.describe_topics([listens, queues])
    counts = {t["topic"]: len(t["partitions"]) for t in described}
    if counts.get(listens) != counts.get(queues):
        raise ValueError(
            f"topic {queues} has {counts.get(queues)} partitions but {listens} has "
            f"{counts.get(listens)}: queue snapshots are written to their listener's partition, "
            "so both must have the same count (recreate one, or point RADIO_TOPIC_QUEUES "
            "at a topic with the right count)"
        )


def ensure_topics_sync(settings: Settings) -> list[str]:
    """ensure_topics for code that is not in an event loop."""
    return asyncio.run(ensure_topics(settings))
