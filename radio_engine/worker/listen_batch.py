"""One micro-batch of listen events -> new listener states, queue snapshots and dead letters.

Plain logic, no Kafka: the Faust agent hands it raw messages and a way to read stored states,
and writes back what it returns (see worker/app.py for the commit order).
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from radio_engine import schemas
from radio_engine.catalog import Catalog
from radio_engine.listeners.state import ListenerState
from radio_engine.listeners.step import ListenEvent, apply_events
from radio_engine.model.inputs import STRONG_FEEDBACK
from radio_engine.model.runtime import ServingModel
from radio_engine.selector.selector import ListenerUpdate, Selector
from radio_engine.settings import Settings
from radio_engine.worker.dead_letters import dead_letter

log = logging.getLogger(__name__)


class InMessage(NamedTuple):
    """A consumed Kafka record, as the processor needs it."""

    key: bytes | None
    value: bytes | None
    partition: int
    offset: int
    timestamp: float  # Kafka record timestamp, seconds


@dataclass
class BatchOutcome:
    """What the agent must write for one batch."""

    states: dict[bytes, tuple[int, bytes]] = field(default_factory=dict)
    queues: list[tuple[bytes, bytes, float]] = field(default_factory=list)
    dead_letters: list[tuple[bytes | None, bytes, str]] = field(default_factory=list)
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    gru_seconds: float = 0.0
    selector_seconds: float = 0.0
    total_seconds: float = 0.0
    rescored: int = 0
    unknown_tracks: int = 0


class ListenProcessor:
    """Decode, validate, step the GRU in order, rebuild queues; one call per micro-batch."""

    def __init__(
        self, settings: Settings, model: ServingModel, catalog: Catalog, selector: Selector
    ) -> None:
        self.settings = settings
        self.model = model
        self.catalog = catalog
        self.selector = selector

    def process(
        self, messages: Sequence[InMessage], load_state: Callable[[bytes], bytes | None]
    ) -> BatchOutcome:
        """Process one batch; never raises for bad input (it becomes a dead letter)."""
        started = time.perf_counter()
        out = BatchOutcome()
        events = self._decode(messages, out)
        if events:
            self._apply(events, load_state, out)
        out.total_seconds = time.perf_counter() - started
        return out

    def refuse_all(self, messages: Sequence[InMessage], reason: str) -> BatchOutcome:
        """Every message of a batch as a dead letter (when processing it failed unexpectedly)."""
        out = BatchOutcome()
        for m in messages:
            record = dead_letter(
                reason,
                "processing the batch failed; see the worker log",
                topic=self.settings.topic_listens,
                partition=m.partition,
                offset=m.offset,
                key=m.key,
                value=m.value,
            )
            out.dead_letters.append((m.key, record, reason))
            out.counts[("invalid", "dead_letter")] += 1
        return out

    def _decode(self, messages: Sequence[InMessage], out: BatchOutcome) -> list[ListenEvent]:
        events: list[ListenEvent] = []
        topic = self.settings.topic_listens
        for m in messages:
            try:
                if m.value is None:
                    raise schemas.BadMessage("schema", "empty message (null value)")
                body = schemas.decode("listen", m.value)
                if m.key is not None and m.key != body["listener_id"].encode():
                    raise schemas.BadMessage(
                        "key_mismatch", f"key {m.key!r} is not listener_id {body['listener_id']!r}"
                    )
            except schemas.BadMessage as exc:
                record = dead_letter(
                    exc.reason,
                    exc.error,
                    topic=topic,
                    partition=m.partition,
                    offset=m.offset,
                    key=m.key,
                    value=m.value,
                )
                out.dead_letters.append((m.key, record, exc.reason))
                out.counts[("invalid", "dead_letter")] += 1
                continue
            artist = body.get("artist_id") or self.catalog.artist_of(body["track_id"])
            events.append(
                ListenEvent(
                    listener_id=body["listener_id"],
                    track_id=body["track_id"],
                    event=body["event"],
                    ts=float(body["ts"]),
                    artist_id=artist,
                    dwell_ratio=float(body.get("dwell_ratio", math.nan)),
                    event_id=body.get("event_id", ""),
                    partition=m.partition,
                    offset=m.offset,
                    kafka_ts=m.timestamp,
                )
            )
        return events

    def _load(self, listener_id: str, load_state: Callable[[bytes], bytes | None]) -> ListenerState:
        raw = load_state(listener_id.encode())
        if raw is None:
            return ListenerState.new(self.model.h0)
        try:
            return ListenerState.from_bytes(raw)
        except ValueError:
            log.error("listener %s: stored state is unreadable; starting from h0", listener_id)
            return ListenerState.new(self.model.h0)

    def _apply(
        self,
        events: list[ListenEvent],
        load_state: Callable[[bytes], bytes | None],
        out: BatchOutcome,
    ) -> None:
        states = {e.listener_id: self._load(e.listener_id, load_state) for e in events}
        unknown = 0

        def track_in_for(track_ids: list[str], artist_ids: list[str]) -> np.ndarray:
            nonlocal unknown
            vectors, missing = self.catalog.track_in_for(track_ids, artist_ids, self.model)
            unknown += missing
            return vectors

        t0 = time.perf_counter()
        q, applied = apply_events(
            events, states, self.model.step, track_in_for, self.settings.history_length
        )
        out.gru_seconds = time.perf_counter() - t0
        out.unknown_tracks = unknown
        last_event: dict[str, int] = {}
        strong: set[str] = set()
        skipped: dict[str, set[str]] = {}
        for i, (event, ok) in enumerate(zip(events, applied, strict=True)):
            out.counts[(event.event, "applied" if ok else "duplicate")] += 1
            if not ok:
                continue
            last_event[event.listener_id] = i
            if event.event in STRONG_FEEDBACK:
                strong.add(event.listener_id)
            if event.event == "skip":
                skipped.setdefault(event.listener_id, set()).add(event.track_id)
        if not last_event:
            return
        t1 = time.perf_counter()
        updates = [
            ListenerUpdate(lid, states[lid], q[i], lid in strong, skipped.get(lid, set()))
            for lid, i in last_event.items()
        ]
        results = self.selector.update(updates)
        out.selector_seconds = time.perf_counter() - t1
        now = time.time()
        for result in results:
            event = events[last_event[result.listener_id]]
            state = states[result.listener_id]
            key = result.listener_id.encode()
            out.states[key] = (event.partition, state.to_bytes())
            out.rescored += int(result.rescored)
            if result.changed:
                out.queues.append(
                    (key, self._queue_message(result, state, event, now), event.kafka_ts)
                )

    def _queue_message(
        self, result: Any, state: ListenerState, event: ListenEvent, now: float
    ) -> bytes:
        tracks = self.catalog.describe(state.queue)
        for entry in tracks:
            entry["score"] = round(float(result.scores.get(entry["track_id"], 0.0)), 5)
            if entry["track_id"] in result.explored:
                entry["explore"] = True
        after = {
            "track_id": event.track_id,
            "event": event.event,
            "ts": event.ts,
            "partition": event.partition,
            "offset": event.offset,
        }
        if event.event_id:
            after["event_id"] = event.event_id
        message = {
            "listener_id": result.listener_id,
            "version": state.version,
            "generated_at": now,
            "model_version": self.model.version,
            "after_event": after,
            "tracks": tracks,
        }
        return schemas.encode("queue", message, check=False)
