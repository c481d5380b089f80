"""Raw listen records -> valid events as columns, and dead letters for the rest.

One pass per record: a msgspec Struct made from schemas/listen-event.v1.json (the contract)
parses and checks it at once; a record whose key is not its listener_id is refused, since the
key decides which worker holds the listener's state.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

from radio_engine import schemas
from radio_engine.dead_letters import dead_letter
from radio_engine.listeners.events import ListenEvents

#: (original key, dead-letter record, reason)
Refusal = tuple[bytes | None, bytes, str]


class RawRecord(Protocol):
    """What the listen path needs of a consumed Kafka record."""

    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> float: ...


class InMessage(NamedTuple):
    """A consumed Kafka record as the listen path takes it (the worker's transport makes them)."""

    key: bytes | None
    value: bytes | None
    partition: int
    offset: int
    timestamp: float  # Kafka record timestamp, seconds


def decode_listens(
    records: Sequence[RawRecord],
    topic: str,
    artist_of: Callable[[str], str],
    refused: list[Refusal],
    counts: Counter[tuple[str, str]],
) -> ListenEvents:
    """The valid events of `records` as columns; each invalid one becomes a dead letter in
    `refused` (with its reason) and is counted in `counts` as ("invalid", "dead_letter").

    An event without artist_id takes the catalog's artist for its track (`artist_of`).
    """
    out = ListenEvents()
    decode = schemas.struct_decoder("listen")
    for r in records:
        try:
            if r.value is None:
                raise schemas.BadMessage("schema", "empty message (null value)")
            body = decode(r.value)
            listener = body.listener_id
            if r.key != listener.encode():  # no key (None) is not the listener's either
                raise schemas.BadMessage(
                    "key_mismatch", f"key {r.key!r} is not listener_id {listener!r}"
                )
        except schemas.BadMessage as exc:
            refused.append((r.key, refuse(r, topic, exc.reason, exc.error), exc.reason))
            counts[("invalid", "dead_letter")] += 1
            continue
        track = body.track_id
        out.listener_ids.append(listener)
        out.track_ids.append(track)
        out.kinds.append(body.event)
        out.artist_ids.append(body.artist_id or artist_of(track))
        out.event_ids.append(body.event_id or "")
        out.ts.append(body.ts)
        out.dwell.append(math.nan if body.dwell_ratio is None else body.dwell_ratio)
        out.partitions.append(r.partition)
        out.offsets.append(r.offset)
        out.kafka_ts.append(r.timestamp)
    return out


def refuse(record: RawRecord, topic: str, reason: str, error: str) -> bytes:
    """The dead-letter record for one refused listen record."""
    return dead_letter(
        reason,
        error,
        topic=topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
    )
