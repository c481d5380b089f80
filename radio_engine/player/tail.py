"""`radio-engine tail --listener ID`: follow one listener's radio queue as it changes.

Reads the queues through `radio_engine.client.RadioClient.queues`: the listener's partition
from the start, so the current queue shows at once, then each newer version as it comes.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from datetime import datetime
from typing import Any

from radio_engine.client import RadioClient
from radio_engine.player.commands import run_client
from radio_engine.settings import Settings


def _track(track: dict[str, Any], score: bool) -> str:
    text = track["track_id"]
    if track.get("artist_id"):
        text += f" ({track['artist_id']})"
    if score:
        text += f" {track['score']:.3f}"
    if track.get("explore"):
        text += " *"
    return text


def format_queue(queue: dict[str, Any], width: int = 5, scores: bool = False) -> str:
    """One line: listener, version, what caused it, and the first `width` tracks (artist)."""
    after = queue.get("after_event", {})
    tracks = ", ".join(_track(t, scores) for t in queue["tracks"][:width])
    cause = f" after {after.get('event', '?')} {after.get('track_id', '?')}" if after else ""
    return f"{queue['listener_id']} v{queue['version']}{cause}: {tracks}"


def format_queue_block(queue: dict[str, Any], width: int = 10) -> str:
    """A header (listener, version, time built, cause, model) and one line per track with
    artist and score; `*` marks exploration picks."""
    built = datetime.fromtimestamp(queue["generated_at"]).strftime("%H:%M:%S.%f")[:-3]
    after = queue.get("after_event", {})
    cause = f" after {after.get('event', '?')} {after.get('track_id', '?')}" if after else ""
    lines = [
        f"{queue['listener_id']} v{queue['version']} at {built}{cause} "
        f"(model {queue['model_version']}, {len(queue['tracks'])} tracks)"
    ]
    lines += [f"  {i:>2}. {_track(t, True)}" for i, t in enumerate(queue["tracks"][:width], 1)]
    return "\n".join(lines)


async def tail(
    settings: Settings, listener: str, count: int | None = None, timeout: float | None = None
) -> int:
    """Print each new version of one listener's queue; return how many were printed."""
    shown = 0
    async with RadioClient(settings=settings) as client:
        stream = client.queues([listener], timeout=timeout)
        async with contextlib.aclosing(stream) as queues:
            async for queue in queues:
                print(format_queue_block(queue), flush=True)
                shown += 1
                if count is not None and shown >= count:
                    break
    return shown


def run(args: argparse.Namespace, settings: Settings) -> int:
    """`radio-engine tail --listener ID [--count N] [--timeout S]`: 1 when nothing came in time."""
    return run_client("tail", _run(settings, args.listener, args.count, args.timeout))


async def _run(settings: Settings, listener: str, count: int | None, timeout: float | None) -> int:
    if not await tail(settings, listener, count, timeout):
        print(f"tail: no queue for listener {listener} on {settings.topic_queues}", file=sys.stderr)
        return 1
    return 0
