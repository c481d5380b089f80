"""`radio-engine replay`: what a player service does with listening, from a 30Music-style CSV.

Each row becomes a listen event: listener_id = user_id, track_id = track_id, artist_id, ts, and
event "play". 30Music is Last.fm scrobbles, logged only after about half a track, so real skips
are absent; this tool does not invent them from pct_played_derived (an estimate made from the
next scrobble's time, i.e. from the future). Events go out in event-time order; at a speed-up,
gaps are divided by the speed and each single wait is capped at MAX_GAP_S, so nights and days
without listening are squashed to a few seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from tqdm import tqdm

from radio_engine import schemas
from radio_engine.client import ClientError
from radio_engine.player.kafka_io import make_producer, start_client
from radio_engine.settings import Settings

#: the longest single wait at a speed-up, seconds of wall time (longer gaps are squashed to it)
MAX_GAP_S = 2.0
#: columns a replay CSV must have (30Music events.csv has these and more)
REQUIRED_COLUMNS = ("user_id", "track_id", "ts")
#: delivery futures awaited together when sending as fast as possible
SEND_WINDOW = 1000


class ReplayStopped(ClientError):
    """The broker stopped acknowledging mid-replay: says how far the replay got."""

    def __init__(self, acknowledged: int, total: int, topic: str, broker: str, cause: Exception):
        said = str(cause)
        name = type(cause).__name__
        said = said if said.startswith(name) else f"{name}: {said}"
        super().__init__(
            f"the broker at {broker} stopped acknowledging ({said}); "
            f"{acknowledged} of {total} events are on {topic}, the rest were not sent or not "
            "acknowledged"
        )
        self.acknowledged = acknowledged


@dataclass(frozen=True)
class ReplayStats:
    """What a replay sent: events, distinct listeners, wall seconds."""

    events: int
    listeners: int
    seconds: float

    @property
    def rate(self) -> float:
        """Events per second of wall time."""
        return self.events / self.seconds if self.seconds else 0.0


def to_listen_event(row: dict[str, str]) -> dict[str, Any]:
    """One CSV row as a listen event (schemas/listen-event.v1.json): always a "play".

    A CSV with its own `event` column (not 30Music) may carry other kinds; nothing is derived
    from pct_played_derived.
    """
    event: dict[str, Any] = {
        "listener_id": str(row["user_id"]),
        "track_id": str(row["track_id"]),
        "event": row.get("event") or "play",
        "ts": float(row["ts"]),
    }
    if row.get("artist_id"):
        event["artist_id"] = str(row["artist_id"])
    return event


def read_events(
    path: Path | str, limit: int | None = None, listeners: int | None = None
) -> list[dict[str, Any]]:
    """Listen events from a CSV in event-time order (equal timestamps keep the file's order).

    `listeners` keeps only the first N listeners to appear in time; `limit` then keeps the
    first N events.
    """
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"{path}: missing column(s) {', '.join(missing)}; a replay CSV needs "
                f"{', '.join(REQUIRED_COLUMNS)} (the columns of 30Music events.csv)"
            )
        try:
            rows = [to_listen_event(row) for row in reader]
        except ValueError as exc:
            raise ValueError(f"{path}, line {reader.line_num}: {exc}") from None
    rows.sort(key=lambda e: e["ts"])  # list.sort is stable: ties keep file order
    if listeners is not None:
        chosen: set[str] = set()
        for e in rows:
            if len(chosen) >= listeners:
                break
            chosen.add(e["listener_id"])
        rows = [e for e in rows if e["listener_id"] in chosen]
    return rows[:limit] if limit is not None else rows


def schedule(
    events: list[dict[str, Any]], speed: float, max_gap_s: float = MAX_GAP_S
) -> Iterator[tuple[float, dict[str, Any]]]:
    """(seconds to wait before sending, event): event-time gaps divided by `speed`, each capped
    at `max_gap_s`. speed <= 0 sends as fast as possible (every delay 0).
    """
    previous: float | None = None
    for event in events:
        delay = 0.0
        if speed > 0 and previous is not None:
            delay = min(max(0.0, event["ts"] - previous) / speed, max_gap_s)
        previous = event["ts"]
        yield delay, event


def event_id(event: dict[str, Any], n: int) -> str:
    """The player's id for the n-th event sent: listener, event time and sequence number."""
    return f"{event['listener_id']}-{int(event['ts'])}-{n}"


async def replay_events(
    settings: Settings,
    events: list[dict[str, Any]],
    speed: float = 0.0,
    rate: float | None = None,
    progress: bool = True,
) -> ReplayStats:
    """Send events onto the listens topic (key = listener_id) at the chosen pace.

    Waits are kept on one clock from the start (the schedule's delays add up, and `rate` puts
    event n no earlier than n / rate seconds in), so time spent sending never piles up as drift.
    Sends are pipelined; delivery is awaited in windows and before every wait, so a broker error
    surfaces here, as ReplayStopped with the count of events acknowledged before it.
    """
    producer = make_producer(settings)
    await start_client(producer)
    started = time.monotonic()
    acknowledged = _Acknowledged(
        tqdm(total=len(events), desc="replay", unit="ev", disable=not progress)
    )
    try:
        await _send_all(producer, settings, events, speed, rate, started, acknowledged)
    except KafkaError as exc:
        raise ReplayStopped(
            acknowledged.count, len(events), settings.topic_listens, settings.broker, exc
        ) from exc
    finally:
        acknowledged.bar.close()
        await producer.stop()
    listeners = len({e["listener_id"] for e in events})
    return ReplayStats(len(events), listeners, time.monotonic() - started)


@dataclass
class _Acknowledged:
    """Events the broker acknowledged so far, counted and shown on the progress bar."""

    bar: tqdm
    count: int = 0

    async def settle(self, pending: list[asyncio.Future[Any]]) -> None:
        """Wait for these sends to be acknowledged (raising the first failure), then count them."""
        if pending:
            await asyncio.gather(*pending)
            self.count += len(pending)
            self.bar.update(len(pending))
            pending.clear()


async def _send_all(
    producer: AIOKafkaProducer,
    settings: Settings,
    events: list[dict[str, Any]],
    speed: float,
    rate: float | None,
    started: float,
    acknowledged: _Acknowledged,
) -> None:
    """Send every event on schedule, pipelined, delivery awaited in windows and before waits."""
    pending: list[asyncio.Future[Any]] = []
    due = 0.0  # seconds after `started` when the next event is due
    for sent, (delay, event) in enumerate(schedule(events, speed)):
        due += delay
        if rate:
            due = max(due, sent / rate)
        wait = due - (time.monotonic() - started)
        if wait > 0:
            await acknowledged.settle(pending)
            await asyncio.sleep(wait)
        value = schemas.encode("listen", {**event, "event_id": event_id(event, sent)})
        pending.append(
            await producer.send(
                settings.topic_listens, value=value, key=event["listener_id"].encode()
            )
        )
        if len(pending) >= SEND_WINDOW:
            await acknowledged.settle(pending)
    await acknowledged.settle(pending)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """`radio-engine replay EVENTS.csv [--speed X] [--limit N] [--listeners N] [--rate R]`."""
    speed = settings.replay_speed if args.speed is None else args.speed
    if speed < 0:
        raise SystemExit(f"replay: --speed must be 0 (as fast as possible) or more, got {speed}")
    if args.rate is not None and args.rate <= 0:
        raise SystemExit(f"replay: --rate must be a positive number of events/s, got {args.rate}")
    events = read_events(args.events, args.limit, args.listeners)
    if not events:
        print(f"replay: no events in {args.events}")
        return 1
    try:
        stats = asyncio.run(replay_events(settings, events, speed=speed, rate=args.rate))
    except ReplayStopped as exc:
        print(f"radio-engine replay: {exc}", file=sys.stderr)
        return 2
    print(
        f"replay: {stats.events} events from {stats.listeners} listeners in {stats.seconds:.1f} s "
        f"({stats.rate:.0f} events/s) onto {settings.topic_listens} at {settings.broker}"
    )
    return 0
