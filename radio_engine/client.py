"""A small Python client for player services: send listen events, follow queues, read dead letters.

    async with RadioClient("127.0.0.1:19092") as radio:
        sent = await radio.send("listener-1", "track-9", "skip", dwell_ratio=0.1)
        async for queue in radio.queues(["listener-1"], timeout=10):
            ...

Events are checked against schemas/listen-event.v1.json before they leave (InvalidEvent names
the field), keyed by listener_id, and carry an event_id (a uuid4 unless given): sending the same
event again is a retry the worker recognises and skips. Connections open on first use; an
unreachable broker is one BrokerUnavailable error that says how to start one.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError
from aiokafka.partitioner import DefaultPartitioner

from radio_engine import schemas
from radio_engine.kafka_diagnosis import connection_problem, unreachable_line
from radio_engine.kafka_security import security_kwargs
from radio_engine.listens.build import InvalidEvent, check_listen_event, listen_event
from radio_engine.player.kafka_io import make_consumer, make_producer, start_client
from radio_engine.settings import SettingError, Settings

__all__ = ["InvalidEvent", "check_listen_event", "listen_event"]  # built by listens.build

log = logging.getLogger(__name__)

#: how long `queues` waits for the queues topic to exist when it has no timeout of its own
TOPIC_WAIT_S = 30.0


class ClientError(Exception):
    """A problem the user fixes outside the program (broker down, topic missing): one line."""


class BrokerUnavailable(ClientError, ConnectionError):
    """No Kafka broker answers at the bootstrap address."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__(unreachable_line(bootstrap))
        self.bootstrap = bootstrap


class BrokerRefused(ClientError, ConnectionError):
    """A broker answers but the connection cannot be made as configured: its certificate is not
    trusted, the TLS handshake fails, or SASL authentication fails (wrong user or password).
    The message names what failed and where, never the password."""


class SecurityMisconfigured(ClientError, ValueError):
    """The RADIO_KAFKA_* security settings cannot work (a missing file, no password, ...)."""


class TopicMissing(ClientError, LookupError):
    """The topic to read does not exist on the broker (yet)."""


@dataclass(frozen=True)
class Delivery:
    """Where the broker stored a sent event (its ack), with the event's id."""

    event_id: str
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class DeadLetter:
    """One refused input: why (reason, error), where it was read, and its original bytes."""

    reason: str
    error: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    failed_at: float

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> DeadLetter:
        """From a decoded schemas/dead-letter.v1.json message (base64 fields decoded)."""
        key = record.get("key_b64")
        return cls(
            reason=record["reason"],
            error=record["error"],
            topic=record["topic"],
            partition=record["partition"],
            offset=record["offset"],
            key=base64.b64decode(key) if key is not None else None,
            value=base64.b64decode(record["value_b64"]),
            failed_at=float(record["failed_at"]),
        )

    @property
    def time(self) -> str:
        """When the worker refused it, local time to the second."""
        return datetime.fromtimestamp(self.failed_at).strftime("%Y-%m-%d %H:%M:%S")

    def preview(self, width: int = 60) -> str:
        """The original payload on one line, cut to `width` characters (hex when not UTF-8)."""
        try:
            text = " ".join(self.value.decode().split())
        except UnicodeDecodeError:
            text = f"<{len(self.value)} bytes, not UTF-8: {self.value[:16].hex()}>"
        return text if len(text) <= width else text[: width - 3] + "..."

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: the record's fields, key and value as text (value None if binary)."""
        try:
            value: str | None = self.value.decode()
        except UnicodeDecodeError:
            value = None
        return {
            "time": self.time,
            "failed_at": self.failed_at,
            "reason": self.reason,
            "error": self.error,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "key": self.key.decode(errors="replace") if self.key is not None else None,
            "value": value,
            "value_b64": base64.b64encode(self.value).decode(),
        }


def partition_for(listener_id: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2 of the key) gives this listener."""
    all_parts = list(range(partitions))
    return DefaultPartitioner()(listener_id.encode(), all_parts, all_parts)


class VersionFilter:
    """Passes each listener's queue only when its version is higher than any seen before."""

    def __init__(self) -> None:
        self.highest: dict[str, int] = {}

    def accept(self, queue: dict[str, Any]) -> bool:
        """True (and remember the version) when this queue is newer than the listener's last."""
        listener, version = queue["listener_id"], int(queue["version"])
        if version <= self.highest.get(listener, 0):
            return False
        self.highest[listener] = version
        return True


class RadioClient:
    """The engine as a player service sees it: listens in, queues and dead letters out.

    Use as `async with RadioClient(bootstrap, settings)`; bootstrap overrides settings.broker,
    settings default to Settings.from_env() (topic names included).
    """

    def __init__(self, bootstrap: str | None = None, settings: Settings | None = None) -> None:
        base = settings if settings is not None else Settings.from_env()
        self.settings = base.with_overrides(broker=bootstrap)
        self._producer: AIOKafkaProducer | None = None
        self._producer_lock = asyncio.Lock()

    async def __aenter__(self) -> RadioClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Flush and close the producer, if one was opened."""
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def send(
        self,
        listener_id: str,
        track_id: str,
        event: str,
        *,
        ts: float | None = None,
        artist_id: str | None = None,
        dwell_ratio: float | None = None,
        event_id: str | None = None,
    ) -> Delivery:
        """Check, send and await the broker's ack for one listen event (see `listen_event`)."""
        message = listen_event(
            listener_id,
            track_id,
            event,
            ts=ts,
            artist_id=artist_id,
            dwell_ratio=dwell_ratio,
            event_id=event_id,
        )
        return await self.send_event(message)

    async def send_event(self, message: dict[str, Any]) -> Delivery:
        """Send a listen event dict keyed by its listener_id; returns once the broker acked it.

        A dict without an event_id gets one (a uuid4), so sending the same dict again is a retry.
        """
        check_listen_event(message)
        event_id = message.setdefault("event_id", str(uuid.uuid4()))
        value = schemas.encode("listen", message, check=False)
        meta = await self.send_bytes(message["listener_id"].encode(), value)
        return Delivery(event_id, meta.topic, meta.partition, meta.offset)

    async def send_bytes(self, key: bytes | None, value: bytes) -> Any:
        """Send bytes onto the listens topic unchecked (to show the dead-letter path); the ack."""
        producer = await self._get_producer()
        return await producer.send_and_wait(self.settings.topic_listens, value=value, key=key)

    async def queues(
        self, listener_ids: Iterable[str] | None = None, *, timeout: float | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield each newer queue version (of these listeners, or of all) from the start of their
        partitions, then as published; stop after `timeout` seconds when given.

        A version at or below the highest seen for its listener is dropped (players keep the
        highest); messages that break the queue schema are logged and skipped.
        """
        wanted = set(listener_ids) if listener_ids is not None else None
        wanted_keys = {lid.encode() for lid in wanted} if wanted is not None else None
        deadline = time.monotonic() + timeout if timeout else None
        topic = self.settings.topic_queues
        consumer = await self._start_consumer()
        try:
            wait = timeout if timeout else TOPIC_WAIT_S
            partitions = await self.topic_partitions(topic, wait=wait)
            if not partitions:
                if timeout:
                    return
                raise TopicMissing(
                    f"topic {topic} does not exist at {self.settings.broker} (has a worker run?)"
                )
            if wanted is not None:
                chosen = {partition_for(lid, len(partitions)) for lid in wanted}
            else:
                chosen = set(partitions)
            consumer.assign([TopicPartition(topic, p) for p in sorted(chosen)])
            versions = VersionFilter()
            while deadline is None or time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    for record in records:
                        if wanted_keys is not None and record.key not in wanted_keys:
                            continue
                        try:
                            queue = schemas.decode("queue", record.value)
                        except schemas.BadMessage as exc:
                            log.warning(
                                "skipped queue message at offset %d: %s", record.offset, exc
                            )
                            continue
                        if wanted is not None and queue["listener_id"] not in wanted:
                            continue
                        if versions.accept(queue):
                            yield queue
        finally:
            await consumer.stop()

    async def dead_letters(
        self, *, from_beginning: bool = True, follow: bool = False, timeout: float | None = None
    ) -> AsyncIterator[DeadLetter]:
        """Yield dead letters (from the start of the topic, or only new ones); without `follow`,
        stop at the end the topic had when reading began. `timeout` caps the seconds spent.
        """
        deadline = time.monotonic() + timeout if timeout else None
        topic = self.settings.topic_dead_letters
        consumer = await self._start_consumer()
        try:
            wait = (timeout or math.inf) if follow else 0.0
            partitions = [
                TopicPartition(topic, p) for p in await self.topic_partitions(topic, wait)
            ]
            if not partitions:
                return
            consumer.assign(partitions)
            if from_beginning:
                await consumer.seek_to_beginning(*partitions)
            else:
                await consumer.seek_to_end(*partitions)
            end = None if follow else await consumer.end_offsets(partitions)
            while deadline is None or time.monotonic() < deadline:
                if end is not None and all(
                    [await consumer.position(tp) >= end[tp] for tp in partitions]
                ):
                    return
                batch = await consumer.getmany(timeout_ms=200)
                for tp, records in batch.items():
                    for record in records:
                        if end is not None and record.offset >= end[tp]:
                            continue
                        try:
                            letter = DeadLetter.from_record(
                                schemas.decode("dead_letter", record.value)
                            )
                        except (schemas.BadMessage, ValueError) as exc:
                            log.warning("skipped dead letter at offset %d: %s", record.offset, exc)
                            continue
                        yield letter
        finally:
            await consumer.stop()

    async def topic_partitions(self, topic: str, wait: float = 0.0) -> list[int]:
        """The partitions of a topic, waiting up to `wait` seconds for it to exist ([] if not)."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.broker, **self._security())
        await self._start(admin)
        deadline = time.monotonic() + wait
        try:
            while True:
                [meta] = await admin.describe_topics([topic])
                if meta["partitions"]:
                    return sorted(p["partition"] for p in meta["partitions"])
                if time.monotonic() >= deadline:
                    return []
                await asyncio.sleep(0.5)
        finally:
            await admin.close()

    def _security(self) -> dict[str, Any]:
        """The clients' security options; a setting that cannot work is one SecurityMisconfigured."""
        try:
            return security_kwargs(self.settings)
        except SettingError as exc:
            raise SecurityMisconfigured(str(exc)) from None

    async def _get_producer(self) -> AIOKafkaProducer:
        async with self._producer_lock:
            if self._producer is None:
                self._security()  # a misconfiguration is reported before any client is made
                producer = make_producer(self.settings, linger_ms=0)
                await self._start(producer)
                self._producer = producer
            return self._producer

    async def _start_consumer(self) -> AIOKafkaConsumer:
        self._security()
        consumer = make_consumer(self.settings)
        await self._start(consumer)
        return consumer

    async def _start(
        self, client: AIOKafkaProducer | AIOKafkaConsumer | AIOKafkaAdminClient
    ) -> None:
        """Start a Kafka client; if that fails, close it and raise BrokerUnavailable (nothing
        answers) or BrokerRefused (TLS or SASL failed: the line says which and where)."""
        try:
            await start_client(client)
        except KafkaConnectionError:
            if self.settings.kafka_security_protocol.upper() != "PLAINTEXT":
                problem = await connection_problem(self.settings)
                if problem and problem != unreachable_line(self.settings.broker):
                    raise BrokerRefused(problem) from None
            raise BrokerUnavailable(self.settings.broker) from None
