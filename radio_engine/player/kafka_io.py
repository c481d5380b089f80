"""Producers and consumers for the player tools, built from Settings."""

from __future__ import annotations

import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from radio_engine.broker.config import MESSAGE_MAX_BYTES
from radio_engine.kafka_security import security_kwargs
from radio_engine.settings import Settings

#: aiokafka's log line for a failed bootstrap connection (the commands say it once, better)
BOOTSTRAP_LOG = 'Unable connect to "%s:%s": %s'


def quiet_bootstrap_log(record: logging.LogRecord) -> bool:
    """Drop aiokafka's line for a failed bootstrap connection: the command's one line says it."""
    return record.msg != BOOTSTRAP_LOG


async def start_client(client: AIOKafkaProducer | AIOKafkaConsumer | AIOKafkaAdminClient) -> None:
    """Start a Kafka client; if it cannot connect, close it (no "unclosed client" warning) and
    let the error go on to the command, which turns it into one line."""
    logging.getLogger("aiokafka").addFilter(quiet_bootstrap_log)
    try:
        await client.start()
    except BaseException:
        if isinstance(client, AIOKafkaAdminClient):
            await client.close()
        else:
            await client.stop()
        raise


def producer_acks(settings: Settings) -> int | str:
    """The leader's ack alone on a one-replica topic; every in-sync replica's (bounded below by
    min.insync.replicas) once topics are replicated, so a leader failover loses no acked event."""
    return 1 if settings.topic_replication_factor <= 1 else "all"


def make_producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    """A producer that batches (linger 5 ms) and waits for the ack `producer_acks` names."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.broker,
        "linger_ms": 5,
        "acks": producer_acks(settings),
        "max_request_size": MESSAGE_MAX_BYTES,
        "max_batch_size": 256 * 1024,
        **security_kwargs(settings),
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
        **security_kwargs(settings),
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)
