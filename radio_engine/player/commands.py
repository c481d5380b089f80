"""`radio-engine send` and `radio-engine dead-letters`: the Python client from the shell.

Both go through `radio_engine.client.RadioClient`; a broker that cannot be reached, a missing
topic or an invalid event is one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Coroutine
from typing import Any

import orjson

from radio_engine.client import ClientError, DeadLetter, InvalidEvent, RadioClient, listen_event
from radio_engine.settings import Settings

#: the dead-letters table: column titles and widths (the payload column takes the rest)
TABLE_COLUMNS = (("time", 19), ("reason", 20), ("read from", 28), ("error", 48), ("payload", 0))


def run_client(command: str, work: Coroutine[Any, Any, int]) -> int:
    """Run a command's coroutine; a ClientError or InvalidEvent becomes one line and exit 2."""
    try:
        return asyncio.run(work)
    except (ClientError, InvalidEvent) as exc:
        print(f"radio-engine {command}: {exc}", file=sys.stderr)
        return 2


def run_send(args: argparse.Namespace, settings: Settings) -> int:
    """`radio-engine send --listener L --track T --event E ...`: print the event_id and where
    it landed (checked before any connection, so a bad event needs no broker to be refused)."""
    try:
        message = listen_event(
            args.listener,
            args.track,
            args.event,
            ts=args.ts,
            artist_id=args.artist,
            dwell_ratio=args.dwell,
            event_id=args.event_id,
        )
    except InvalidEvent as exc:
        print(f"radio-engine send: {exc}", file=sys.stderr)
        return 2
    return run_client("send", _send(settings, message))


async def _send(settings: Settings, message: dict[str, Any]) -> int:
    async with RadioClient(settings=settings) as client:
        sent = await client.send_event(message)
    print(
        f"event_id {sent.event_id} -> {sent.topic} partition {sent.partition} offset {sent.offset}"
    )
    return 0


def run_dead_letters(args: argparse.Namespace, settings: Settings) -> int:
    """`radio-engine dead-letters [--follow] [--limit N] [--json]`: what the worker refused."""
    return run_client("dead-letters", _dead_letters(settings, args.follow, args.limit, args.json))


async def _dead_letters(settings: Settings, follow: bool, limit: int | None, as_json: bool) -> int:
    shown = 0
    async with RadioClient(settings=settings) as client:
        stream = client.dead_letters(follow=follow)
        async with contextlib.aclosing(stream) as letters:
            async for letter in letters:
                if not as_json and shown == 0:
                    print(table_header())
                print(format_json(letter) if as_json else format_row(letter), flush=True)
                shown += 1
                if limit is not None and shown >= limit:
                    break
    if not shown:
        print(f"no dead letters on {settings.topic_dead_letters}", file=sys.stderr)
    return 0


def _cells(values: list[str]) -> str:
    cells = []
    for value, (_, width) in zip(values, TABLE_COLUMNS, strict=True):
        if width and len(value) > width:
            value = value[: width - 3] + "..."
        cells.append(f"{value:<{width}}" if width else value)
    return "  ".join(cells)


def table_header() -> str:
    """The title line of the dead-letters table."""
    return _cells([title for title, _ in TABLE_COLUMNS])


def format_row(letter: DeadLetter, payload_width: int = 60) -> str:
    """One table line: time, reason, topic[partition]@offset, error, the payload's start."""
    where = f"{letter.topic}[{letter.partition}]@{letter.offset}"
    error = " ".join(letter.error.split())
    return _cells([letter.time, letter.reason, where, error, letter.preview(payload_width)])


def format_json(letter: DeadLetter) -> str:
    """One JSON object on one line (see DeadLetter.to_json)."""
    return orjson.dumps(letter.to_json()).decode()
