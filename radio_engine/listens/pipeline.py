"""One micro-batch of listen records -> new listener states, queue snapshots and dead letters.

Plain logic, no Kafka: the worker hands it raw records and a way to read stored states, and
writes back what it returns (see worker/app.py for the commit order). One pass per batch:
  1. decode + validate every record once (listens.decode); bad ones become dead letters;
  2. load each listener's state once (not once per event);
  3. look up every event's track vector at once, run the GRU in order, batched across
     listeners (listeners.step), fold the events into each state once (listeners.history);
  4. the selector re-ranks every touched listener's pool in one batched call;
  5. encode each touched state once, and a queue message for each queue that changed.
A listener with a redelivered event (a duplicate: the worker died after writing its state but
maybe before its queue reached Kafka) gets its current queue published again, same version, so
the queue topic never stays behind the state; a player keeps the highest version, so a repeat
is harmless.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from radio_engine import schemas
from radio_engine.catalog import Catalog
from radio_engine.listeners.events import ListenEvents
from radio_engine.listeners.state import ListenerState
from radio_engine.listeners.step import apply_events
from radio_engine.listens.decode import RawRecord, Refusal, decode_listens, refuse
from radio_engine.model.inputs import STRONG_FEEDBACK
from radio_engine.model.runtime import ServingModel
from radio_engine.selector.selector import ListenerUpdate, QueueResult, Selector
from radio_engine.settings import Settings

log = logging.getLogger(__name__)

LoadState = Callable[[bytes], bytes | None]
#: the last queue message of this many listeners is kept to show on /queues/<id> with its reasons
QUEUES_SHOWN = 10_000


@dataclass
class QueueOut:
    """One queue snapshot to publish, on the partition its listener's events came from."""

    key: bytes
    value: bytes
    partition: int


@dataclass
class BatchOutcome:
    """What the worker must write for one batch, and what it cost."""

    states: dict[bytes, tuple[int, bytes]] = field(default_factory=dict)
    queues: list[QueueOut] = field(default_factory=list)
    dead_letters: list[Refusal] = field(default_factory=list)
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    applied_kafka_ts: np.ndarray = field(default_factory=lambda: np.zeros(0))
    seconds: Counter[str] = field(default_factory=Counter)
    rescored: int = 0
    first_pools: int = 0
    unknown_tracks: int = 0


class ListenPipeline:
    """Decode, validate, step the GRU in order, rebuild queues; one call per micro-batch."""

    def __init__(
        self, settings: Settings, model: ServingModel, catalog: Catalog, selector: Selector
    ) -> None:
        self.settings = settings
        self.model = model
        self.catalog = catalog
        self.selector = selector
        self._shown: OrderedDict[str, bytes] = OrderedDict()

    def last_queue(self, listener_id: str) -> dict[str, Any] | None:
        """The last queue message this worker published for a listener (with each track's
        reasons), if it is among the QUEUES_SHOWN most recent ones."""
        message = self._shown.get(listener_id)
        return None if message is None else orjson.loads(message)

    def _show(self, listener_id: str, message: bytes) -> None:
        self._shown[listener_id] = message
        self._shown.move_to_end(listener_id)
        if len(self._shown) > QUEUES_SHOWN:
            self._shown.popitem(last=False)

    def process(self, records: Sequence[RawRecord], load_state: LoadState) -> BatchOutcome:
        """Process one batch; never raises for bad input (it becomes a dead letter)."""
        clock = _Clock()
        out = BatchOutcome()
        topic = self.settings.topic_listens
        events = decode_listens(
            records, topic, self.catalog.artist_of, out.dead_letters, out.counts
        )
        clock.lap(out, "decode")
        if len(events):
            self._apply(events, load_state, out, clock)
        out.seconds["total"] = clock.total()
        return out

    def refuse_all(self, records: Sequence[RawRecord], reason: str) -> BatchOutcome:
        """Every record of a batch as a dead letter (when processing it failed unexpectedly)."""
        out = BatchOutcome()
        error = "processing the batch failed; see the worker log"
        for r in records:
            out.dead_letters.append(
                (r.key, refuse(r, self.settings.topic_listens, reason, error), reason)
            )
            out.counts[("invalid", "dead_letter")] += 1
        return out

    def _load(self, listener_id: str, load_state: LoadState) -> ListenerState:
        raw = load_state(listener_id.encode())
        if raw is None:
            return ListenerState.new(self.model.h0)
        try:
            return ListenerState.from_bytes(raw)
        except ValueError:
            log.error("listener %s: stored state is unreadable; starting from h0", listener_id)
            return ListenerState.new(self.model.h0)

    def _apply(
        self, events: ListenEvents, load_state: LoadState, out: BatchOutcome, clock: _Clock
    ) -> None:
        states = {lid: self._load(lid, load_state) for lid in dict.fromkeys(events.listener_ids)}
        clock.lap(out, "load_state")
        unknown = 0

        def track_in_for(track_ids: list[str], artist_ids: list[str]) -> np.ndarray:
            nonlocal unknown
            vectors, unknown = self.catalog.track_in_for(track_ids, artist_ids, self.model)
            return vectors

        q, applied = apply_events(
            events,
            states,
            self.model.step,
            track_in_for,
            self.settings.history_length,
            self.settings.event_id_window,
        )
        clock.lap(out, "gru")
        out.unknown_tracks = unknown
        updates, repeated = _updates(events, applied, states, q, out)
        out.applied_kafka_ts = np.asarray(events.kafka_ts)[applied]
        for lid, i in repeated.items():
            if lid not in updates and states[lid].version:
                message = self._republished(lid, states[lid])
                out.queues.append(QueueOut(lid.encode(), message, events.partitions[i]))
        if not updates:
            return
        results = self.selector.update(list(updates.values()))
        clock.lap(out, "selector")
        for result in results:
            last = updates[result.listener_id].last
            state = states[result.listener_id]
            key = result.listener_id.encode()
            partition = events.partitions[last]
            out.states[key] = (partition, state.to_bytes())
            out.rescored += result.rescored
            out.first_pools += result.first_pool
            if result.changed or result.listener_id in repeated:
                message = self._queue_message(result, state, events, last)
                out.queues.append(QueueOut(key, message, partition))
                self._show(result.listener_id, message)
        clock.lap(out, "encode")

    def _queue_message(
        self, result: QueueResult, state: ListenerState, events: ListenEvents, last: int
    ) -> bytes:
        tracks = self.catalog.describe(state.queue)
        for entry, why in zip(tracks, result.why, strict=False):
            entry["score"] = round(float(result.scores.get(entry["track_id"], 0.0)), 5)
            if entry["track_id"] in result.explored:
                entry["explore"] = True
            entry["why"] = why
        after = {
            "track_id": events.track_ids[last],
            "event": events.kinds[last],
            "ts": events.ts[last],
            "partition": events.partitions[last],
            "offset": events.offsets[last],
        }
        if events.event_ids[last]:
            after["event_id"] = events.event_ids[last]
        message = {
            "listener_id": result.listener_id,
            "version": state.version,
            "generated_at": time.time(),
            "model_version": self.model.version,
            "after_event": after,
            "tracks": tracks,
        }
        return schemas.encode("queue", message, check=False)

    def _republished(self, listener_id: str, state: ListenerState) -> bytes:
        """The listener's current queue as it was published (scores from the state), again."""
        tracks = self.catalog.describe(state.queue)
        for entry, score in zip(tracks, state.queue_scores, strict=False):
            entry["score"] = round(float(score), 5) if np.isfinite(score) else 0.0
        message = {
            "listener_id": listener_id,
            "version": state.version,
            "generated_at": time.time(),
            "model_version": self.model.version,
            "republished": True,
            "tracks": tracks,
        }
        return schemas.encode("queue", message, check=False)


@dataclass
class _Update(ListenerUpdate):
    """A selector update that remembers the listener's last applied event of the batch."""

    last: int = -1


def _updates(
    events: ListenEvents,
    applied: np.ndarray,
    states: dict[str, ListenerState],
    q: np.ndarray,
    out: BatchOutcome,
) -> tuple[dict[str, _Update], dict[str, int]]:
    """One selector update per listener with an applied event, and the listeners with a
    duplicate (index of their last one); counts every event's outcome."""
    updates: dict[str, _Update] = {}
    repeated: dict[str, int] = {}
    kinds = events.kinds
    for i, ok in enumerate(applied.tolist()):
        out.counts[(kinds[i], "applied" if ok else "duplicate")] += 1
        if not ok:
            repeated[events.listener_ids[i]] = i
            continue
        lid = events.listener_ids[i]
        u = updates.get(lid)
        if u is None:
            u = updates[lid] = _Update(lid, states[lid], q[i])
        u.q, u.last = q[i], i
        if kinds[i] in STRONG_FEEDBACK:
            u.strong_feedback = True
            if kinds[i] == "skip":
                u.skipped.add(events.track_ids[i])
    return updates, repeated


class _Clock:
    """Seconds spent per stage of one batch (BatchOutcome.seconds), for metrics and benchmarks."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()

    def lap(self, out: BatchOutcome, stage: str) -> None:
        now = time.perf_counter()
        out.seconds[stage] += now - self.last
        self.last = now

    def total(self) -> float:
        return time.perf_counter() - self.start
