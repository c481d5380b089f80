"""`radio-engine replay`: what a player service does with listening, from a 30Music-style CSV.

Each row becomes a listen event: listener_id = user_id, track_id = track_id, artist_id, ts, and
event "play". 30Music is Last.fm scrobbles, logged after about half a track, so real skips are
absent; this tool does not invent them from pct_played_derived (an estimate from the next
scrobble's time, i.e. from the future).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from radio_engine import schemas
from radio_engine.player.kafka_io import make_producer
from radio_engine.settings import Settings

#: a gap longer than this (seconds of event time) is squashed when replaying at a speed-up
MAX_GAP_S = 2.0


@dataclass(frozen=True)
class ReplayStats:
    """What a replay sent."""

    events: int
    listeners: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def to_listen_event(row: dict[str, str]) -> dict[str, Any]:
    """One CSV row as a listen event (schemas/listen-event.v1.json)."""
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
    """Listen events from a CSV in event-time order (equal timestamps keep the file's order)."""
    with open(path, newline="") as f:
        rows = [to_listen_event(row) for row in csv.DictReader(f)]
    rows.sort(key=lambda e: e["ts"])  # stable: ties keep file order
    if listeners is not None:
        chosen: dict[str, None] = {}
        for e in rows:
            if len(chosen) >= listeners:
                break
            chosen.setdefault(e["listener_id"], None)
        rows = [e for e in rows if e["listener_id"] in chosen]
    return rows[:limit] if limit is not None else rows


def schedule(
    events: list[dict[str, Any]], speed: float, max_gap_s: float = MAX_GAP_S
) -> Iterator[tuple[float, dict[str, Any]]]:
    """(seconds to wait before sending, event): event-time gaps divided by `speed`, each capped.

    speed <= 0 sends as fast as possible (every delay 0).
    """
    previous: float | None = None
    for event in events:
        delay = 0.0
        if speed > 0 and previous is not None:
            delay = min(max(0.0, event["ts"] - previous) / speed, max_gap_s)
        previous = event["ts"]
        yield delay, event


async def replay_events(
    settings: Settings,
    events: list[dict[str, Any]],
    speed: float = 0.0,
    rate: float | None = None,
    progress: bool = True,
) -> ReplayStats:
    """Send events onto the listens topic (key = listener_id) at the chosen pace."""
    producer = make_producer(settings)
    await producer.start()
    started = time.monotonic()
    sent = 0
    try:
        bar = tqdm(total=len(events), desc="replay", unit="ev", disable=not progress)
        pending = []
        for delay, event in schedule(events, speed):
            if rate:
                ahead = sent / rate - (time.monotonic() - started)
                delay = max(delay, ahead)
            if delay > 0:
                await asyncio.sleep(delay)
            event = {**event, "event_id": f"{event['listener_id']}-{int(event['ts'])}-{sent}"}
            value = schemas.encode("listen", event)
            pending.append(
                await producer.send(
                    settings.topic_listens, value=value, key=event["listener_id"].encode()
                )
            )
            sent += 1
            if len(pending) >= 1000 or delay > 0:
                await asyncio.gather(*pending)
                bar.update(len(pending))
                pending.clear()
        await asyncio.gather(*pending)
        bar.update(len(pending))
        bar.close()
    finally:
        await producer.stop()
    return ReplayStats(sent, len({e["listener_id"] for e in events}), time.monotonic() - started)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """`radio-engine replay EVENTS.csv [--speed X] [--limit N] [--listeners N] [--rate R]`."""
    events = read_events(args.events, args.limit, args.listeners)
    speed = settings.replay_speed if args.speed is None else args.speed
    stats = asyncio.run(replay_events(settings, events, speed=speed, rate=args.rate))
    print(
        f"replay: {stats.events} events from {stats.listeners} listeners in {stats.seconds:.1f} s "
        f"({stats.rate:.0f} events/s) onto {settings.topic_listens} at {settings.broker}"
    )
    return 0
