"""The launched broker is a real Kafka: messages round-trip, topics carry their configs."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from radio_engine.broker.topics import ensure_topics
from radio_engine.settings import Settings


async def _roundtrip(settings: Settings) -> list[tuple[bytes, bytes]]:
    producer = AIOKafkaProducer(bootstrap_servers=settings.broker)
    await producer.start()
    try:
        for i in range(3):
            await producer.send_and_wait("test.roundtrip", key=b"k%d" % i, value=b"v%d" % i)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        "test.roundtrip", bootstrap_servers=settings.broker, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        got: list[tuple[bytes, bytes]] = []
        while len(got) < 3:
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 30)
            got += [(r.key, r.value) for records in batch.values() for r in records]
        return got
    finally:
        await consumer.stop()


def test_messages_roundtrip_through_the_real_broker(kafka_settings: Settings) -> None:
    got = asyncio.run(_roundtrip(kafka_settings))
    assert got == [(b"k0", b"v0"), (b"k1", b"v1"), (b"k2", b"v2")]


async def _describe(settings: Settings) -> tuple[list[str], dict[str, str], int]:
    created_again = await ensure_topics(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.broker)
    await admin.start()
    try:
        [resp] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, settings.topic_tracks)]
        )
        configs = {entry[0]: entry[1] for entry in resp.resources[0][4]}
        [meta] = await admin.describe_topics([settings.topic_listens])
        return created_again, configs, len(meta["partitions"])
    finally:
        await admin.close()


def test_topics_are_idempotent_and_tracks_is_compacted(kafka_settings: Settings) -> None:
    created_again, configs, listen_partitions = asyncio.run(_describe(kafka_settings))
    assert created_again == []
    assert configs["cleanup.policy"] == "compact"
    assert listen_partitions == kafka_settings.topic_partitions


def test_a_queues_topic_with_other_partitions_than_the_listens_topic_is_refused(
    kafka_settings: Settings,
) -> None:
    settings = kafka_settings.with_overrides(
        topic_listens="mismatch.listens", topic_queues="mismatch.queues"
    )

    async def go() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.broker)
        await admin.start()
        try:
            await admin.create_topics([NewTopic("mismatch.queues", 2, 1)])
        finally:
            await admin.close()
        await ensure_topics(settings)

    with pytest.raises(ValueError, match=r"mismatch.queues has 2 partitions but .* has 4"):
        asyncio.run(go())


def test_broker_status_command_sees_it(kafka_settings: Settings) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "radio_engine.cli",
            "broker",
            "status",
            "--broker",
            kafka_settings.broker,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"reachable at {kafka_settings.broker}" in out.stdout
