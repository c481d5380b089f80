"""The topic contracts: loads schemas/*.json, validates and encodes messages.

schemas/ is the one source of truth; validators are compiled once with fastjsonschema so a
message costs one orjson parse plus one compiled check (no double parse).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastjsonschema
import orjson

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"

#: schema file stem for each kind of message
KINDS = {
    "listen": "listen-event.v1",
    "audio_chunk": "audio-chunk.v1",
    "track": "track.v1",
    "queue": "radio-queue.v1",
    "dead_letter": "dead-letter.v1",
}


class BadMessage(ValueError):
    """An input message that cannot be used; `reason` is the dead-letter class."""

    def __init__(self, reason: str, error: str) -> None:
        super().__init__(f"{reason}: {error}")
        self.reason = reason
        self.error = error


def load_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema document for a message kind (see KINDS)."""
    if kind not in KINDS:
        raise KeyError(f"unknown message kind {kind!r}; known: {sorted(KINDS)}")
    path = SCHEMA_DIR / f"{KINDS[kind]}.json"
    if not path.exists():
        raise FileNotFoundError(
            f"schema {path} is missing: is the package installed from a checkout?"
        )
    return json.loads(path.read_text())


@functools.cache
def validator(kind: str) -> Callable[[Any], Any]:
    """A compiled validator for a message kind; raises fastjsonschema.JsonSchemaException."""
    return fastjsonschema.compile(load_schema(kind))


def decode(kind: str, raw: bytes | str) -> dict[str, Any]:
    """Parse and validate one message; raise BadMessage('bad_json'|'schema', ...) if unusable."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadMessage("bad_json", f"not JSON: {exc}") from None
    return validate(kind, obj)


def validate(kind: str, obj: Any) -> dict[str, Any]:
    """Validate an already-parsed message; raise BadMessage('schema', ...) if it breaks the contract."""
    try:
        validator(kind)(obj)
    except fastjsonschema.JsonSchemaException as exc:
        got = repr(exc.value)
        got = got if len(got) <= 80 else got[:77] + "..."
        raise BadMessage("schema", f"{exc.message} (got {got})") from None
    return obj


def encode(kind: str, obj: dict[str, Any], *, check: bool = True) -> bytes:
    """Serialise a message to JSON bytes, validating it first unless check=False (hot paths)."""
    if check:
        validate(kind, obj)
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)
