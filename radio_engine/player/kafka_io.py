"""Producers and consumers for the player tools, built from Settings."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from radio_engine.broker.config import MESSAGE_MAX_BYTES
from radio_engine.settings import Settings


def make_producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    """A producer that batches (linger 5 ms) and waits for the leader's ack."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.broker,
        "linger_ms": 5,
        "acks": 1,
        "max_request_size": MESSAGE_MAX_BYTES,
        "max_batch_size": 256 * 1024,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


def make_consumer(settings: Settings, *topics: str, **overrides: Any) -> AIOKafkaConsumer:
    """A consumer without a group (players read their own partitions) from the earliest offset."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.broker,
        "group_id": None,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "fetch_max_wait_ms": 100,
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)
