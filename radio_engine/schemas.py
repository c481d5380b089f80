"""The topic contracts: loads schemas/*.json, validates and encodes messages.

schemas/ is the one source of truth; validators are compiled once with fastjsonschema so a
message costs one orjson parse plus one compiled check (no double parse). The hot listen path
decodes with a msgspec Struct built from the same schema file (`struct_decoder`): parse and
check in one pass, ~10x faster, and the tests hold it to the same verdicts as the validator.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import fastjsonschema
import msgspec
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


#: keywords that draft 2020-12 makes annotations, not assertions (fastjsonschema would assert
#: contentEncoding with a lenient base64 decode, refusing some bad base64 as "schema" and letting
#: the rest through); the consumer of the content checks it (audio/assembly.py: bad_audio)
ANNOTATIONS = ("contentEncoding", "contentMediaType", "contentSchema")


def _assertions(node: Any) -> Any:
    """A schema document without its annotation-only keywords (ANNOTATIONS), at every level."""
    if isinstance(node, dict):
        return {k: _assertions(v) for k, v in node.items() if k not in ANNOTATIONS}
    if isinstance(node, list):
        return [_assertions(v) for v in node]
    return node


@functools.cache
def validator(kind: str) -> Callable[[Any], Any]:
    """A compiled validator for a message kind; raises fastjsonschema.JsonSchemaException."""
    return fastjsonschema.compile(_assertions(load_schema(kind)))


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


#: JSON Schema keywords of a property that the msgspec Struct expresses exactly
_STRUCT_KEYWORDS = {"type", "enum", "minLength", "maxLength", "minimum", "maximum", "description"}
#: schema-level keywords the Struct expresses (or that carry no constraint)
_SCHEMA_KEYWORDS = {
    "$schema",
    "$id",
    "title",
    "description",
    "type",
    "required",
    "properties",
    "additionalProperties",
}


@functools.cache
def struct_decoder(kind: str) -> Callable[[bytes], Any]:
    """A one-pass JSON decoder for a message kind: a msgspec Struct made from its schema.

    Raises BadMessage like `decode` ('bad_json' or 'schema'). Only flat objects of strings,
    numbers, integers and string enums with length and range limits are expressible; any
    other schema raises ValueError here (use `decode`).
    """
    schema = load_schema(kind)
    if set(schema) - _SCHEMA_KEYWORDS or schema.get("type") != "object":
        raise ValueError(f"schema {KINDS[kind]}: a Struct cannot express it (not a flat object)")
    required = set(schema.get("required", []))
    fields: list[tuple[Any, ...]] = []
    for name, prop in schema["properties"].items():
        annotation = _annotation(kind, name, prop)
        fields.append((name, annotation) if name in required else (name, annotation, None))
    fields.sort(key=len)  # msgspec: fields without defaults first
    struct = msgspec.defstruct(
        kind.title().replace("_", ""),
        fields,
        forbid_unknown_fields=schema.get("additionalProperties", True) is False,
        omit_defaults=True,
    )
    decoder = msgspec.json.Decoder(struct)

    def decode_struct(raw: bytes) -> Any:
        try:
            return decoder.decode(raw)
        except (msgspec.ValidationError, RecursionError):
            return slow_path(raw)
        except msgspec.DecodeError as exc:
            raise BadMessage("bad_json", f"not JSON: {exc}") from None

    def slow_path(raw: bytes) -> Any:
        """The verdict of `decode` for what the one-pass decoder refused: it checks a field given
        twice at each occurrence (JSON's last one counts), fields before trailing bytes, and
        recurses per nesting level (orjson takes 1,024 levels)."""
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as bad:
            raise BadMessage("bad_json", f"not JSON: {bad}") from None
        try:
            return msgspec.convert(obj, struct)
        except msgspec.ValidationError as exc:
            raise BadMessage("schema", str(exc)) from None

    return decode_struct


def _annotation(kind: str, name: str, prop: dict[str, Any]) -> Any:
    """The msgspec type of one schema property (ValueError when it cannot be exact)."""
    if set(prop) - _STRUCT_KEYWORDS:
        extra = sorted(set(prop) - _STRUCT_KEYWORDS)
        raise ValueError(f"{kind}.{name}: a Struct cannot express the keywords {extra}")
    if "enum" in prop:
        if not all(isinstance(v, str) for v in prop["enum"]):
            raise ValueError(f"{kind}.{name}: a Struct cannot express a non-string enum")
        return Literal[tuple(prop["enum"])]
    kinds = {"string": str, "number": float, "integer": int}
    if prop.get("type") not in kinds:
        raise ValueError(f"{kind}.{name}: a Struct cannot express type {prop.get('type')!r}")
    limits = {
        "min_length": prop.get("minLength"),
        "max_length": prop.get("maxLength"),
        "ge": prop.get("minimum"),
        "le": prop.get("maximum"),
    }
    limits = {k: v for k, v in limits.items() if v is not None}
    base = kinds[prop["type"]]
    return Annotated[base, msgspec.Meta(**limits)] if limits else base
