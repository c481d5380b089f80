"""A valid listen event, built and checked where it is made (a player, the CLI, the live page).

The check names the first field that breaks schemas/listen-event.v1.json, before anything is
sent, and gives an event_id (uuid4) so that sending the same dict again is a harmless retry.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Any

import fastjsonschema

from radio_engine import schemas


class InvalidEvent(ValueError):
    """A listen event that breaks schemas/listen-event.v1.json; `field` names what is wrong."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"invalid listen event: {field} {problem}")
        self.field = field
        self.problem = problem


def listen_event(
    listener_id: str,
    track_id: str,
    event: str,
    *,
    ts: float | None = None,
    artist_id: str | None = None,
    dwell_ratio: float | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A checked listen event (ts defaults to now, event_id to a new uuid4); InvalidEvent if bad.

    Keep the dict to retry: sending it again carries the same event_id, so it is applied once.
    """
    message: dict[str, Any] = {
        "listener_id": listener_id,
        "track_id": track_id,
        "event": event,
        "ts": time.time() if ts is None else ts,
        "event_id": str(uuid.uuid4()) if event_id is None else event_id,
    }
    if artist_id is not None:
        message["artist_id"] = artist_id
    if dwell_ratio is not None:
        message["dwell_ratio"] = dwell_ratio
    return check_listen_event(message)


def check_listen_event(message: dict[str, Any]) -> dict[str, Any]:
    """Raise InvalidEvent naming the first field that breaks the listen-event schema."""
    schema = schemas.load_schema("listen")
    for name in schema["required"]:
        if name not in message:
            raise InvalidEvent(name, "is required")
    for name in ("ts", "dwell_ratio"):  # NaN passes "minimum" checks but is not JSON
        value = message.get(name)
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidEvent(name, f"must be a finite number (got {value!r})")
    try:
        schemas.validator("listen")(message)
    except fastjsonschema.JsonSchemaException as exc:
        field = ".".join(exc.path[1:]) if exc.path else "event"
        problem = exc.message.removeprefix(exc.name).strip()
        got = repr(exc.value)
        got = got if len(got) <= 60 else got[:57] + "..."
        raise InvalidEvent(field, f"{problem} (got {got})") from None
    return message
