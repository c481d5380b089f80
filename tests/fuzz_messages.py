"""Hostile input for the worker, made from the JSON Schemas with a seeded RNG: reproducible.

Each message carries the verdict it must get (accepted, or its dead-letter reason), worked out
from the mutation and the contract (schemas/*.json, the compatibility rule, the audio sequence
rules), never by asking the code under test. Used by tests/integration/test_fuzz.py (short
form, in CI) and benchmarks/fuzz_input.py (long form).
"""

from __future__ import annotations

import base64
import io
import json
import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import soundfile as sf

from radio_engine import schemas

LISTENS, AUDIO = "listens", "audio"
ACCEPTED = "accepted"
#: JSON nested deeper than this is not JSON we take (bad_json): RFC 8259 section 9 lets a parser
#: limit nesting, and 1,024 is orjson's limit
MAX_JSON_DEPTH = 1024
#: the contract's enum of audio formats, and containers this generator writes with soundfile
CONTAINERS = {"wav": "WAV", "flac": "FLAC", "ogg": "OGG"}
#: a placeholder string swapped for a raw JSON fragment after encoding
HOLE = "\x01HOLE\x01"


@dataclass(frozen=True)
class Limits:
    """The worker's input limits the verdicts depend on (its RADIO_AUDIO_* settings)."""

    max_chunk_bytes: int
    max_track_seconds: float
    #: the largest message the sender puts on a topic (stays under the broker's limit)
    max_message_bytes: int

    @property
    def max_chunk_message_bytes(self) -> int:
        """A chunk message over this is oversize before it is parsed: base64's 4/3 + 4 KiB."""
        return self.max_chunk_bytes * 4 // 3 + 4096


@dataclass(frozen=True)
class Fuzzed:
    """One generated message and what the worker must do with it."""

    topic: str  # LISTENS or AUDIO
    kind: str  # the mutation that made it
    key: bytes | None
    value: bytes | None
    verdict: str  # ACCEPTED or the dead-letter reason
    completes_track: bool = False  # an accepted audio chunk that finishes a track

    @property
    def size(self) -> int:
        return len(self.key or b"") + len(self.value or b"")


def generate(
    n: int, seed: int, limits: Limits, audio_share: float = 0.3, prefix: str = "fz"
) -> list[Fuzzed]:
    """`n` messages (about `audio_share` of them audio chunks), each with its verdict.

    Ids start with `prefix` so that runs against one broker do not share listeners or tracks.
    """
    rng = random.Random(seed)
    listens = ListenFuzzer(rng, limits, prefix)
    audio = AudioFuzzer(rng, limits, prefix)
    out: list[Fuzzed] = []
    while len(out) < n:
        if rng.random() < audio_share:
            out += audio.scenario()
        else:
            out.append(listens.message())
    return out[:n]  # a scenario cut short is fine: a verdict depends only on what came before


def summary(messages: list[Fuzzed]) -> Counter[tuple[str, str, str]]:
    """Messages by (topic, mutation kind, verdict)."""
    return Counter((m.topic, m.kind, m.verdict) for m in messages)


# -- JSON values ---------------------------------------------------------------------------------

ODD_TEXT = [
    "\x00",
    "a\x00b",
    "\u200b",
    "\u202e",
    "\ufeff",
    "e\u0301",
    "😀",
    "𝄞",
    "\U0010ffff",
    "\ufffd",
    "\\",
    '"',
    "\n\t\r",
    "<script>",
    "%s%n",
    "' OR 1=1 --",
    "ｆｕｌｌ",
    "\x7f",
    "日本語",
    "null",
]


def odd_string(rng: random.Random, max_len: int = 24) -> str:
    """A short string of plain and odd characters (NUL, astral, bidi, zero-width, quotes)."""
    parts = []
    while sum(len(p) for p in parts) < rng.randint(1, max_len):
        parts.append(rng.choice(ODD_TEXT) if rng.random() < 0.3 else chr(rng.randint(0x20, 0x7E)))
    return "".join(parts)[:max_len] or "x"


def random_json(rng: random.Random, depth: int = 3) -> Any:
    """Any JSON value, nested at most `depth` levels (finite numbers, odd strings)."""
    pick = rng.randrange(8 if depth > 0 else 6)
    if pick == 0:
        return None
    if pick == 1:
        return rng.random() < 0.5
    if pick == 2:
        return rng.randint(-(2**53), 2**53)
    if pick == 3:
        return rng.choice([0.0, -0.0, 1e-300, 1e300, rng.uniform(-1e6, 1e6)])
    if pick in (4, 5):
        return odd_string(rng)
    if pick == 6:
        return [random_json(rng, depth - 1) for _ in range(rng.randint(0, 4))]
    return {odd_string(rng, 8): random_json(rng, depth - 1) for _ in range(rng.randint(0, 4))}


def wrong_type_value(rng: random.Random, prop: dict[str, Any]) -> Any:
    """A JSON value of a type the schema property does not allow."""
    allowed = prop.get("type")
    if "enum" in prop:
        allowed = "string"
    choices: list[Any] = [None, True, False, [], {}, [1], {"a": 1}]
    if allowed != "string":
        choices += ["1", "", "NaN"]
    if allowed not in ("number", "integer"):
        choices += [0, 1.5, -1]
    if allowed == "integer":
        choices += [0.5, 2.5]
    return rng.choice(choices)


def dumps(obj: Any, rng: random.Random) -> bytes:
    """JSON text of `obj`: compact UTF-8 (orjson) or ASCII with \\u escapes (json), at random."""
    if rng.random() < 0.5:
        return orjson.dumps(obj)
    return json.dumps(obj, ensure_ascii=True, separators=(",", ":")).encode()


def fill_hole(raw: bytes, fragment: bytes) -> bytes:
    """Put a raw JSON fragment where the HOLE string was encoded."""
    encoded = json.dumps(HOLE).encode()
    if encoded not in raw:
        encoded = orjson.dumps(HOLE)
    assert encoded in raw, "the hole must be in the encoded message"
    return raw.replace(encoded, fragment, 1)


def nested(depth: int) -> bytes:
    """JSON arrays nested `depth` levels deep."""
    return b"[" * depth + b"]" * depth


def junk_bytes(rng: random.Random, size: int) -> bytes:
    """Random bytes that cannot start JSON text (so no parser could take them)."""
    return bytes([rng.choice(b"\x00\x01\x80\xc0\xff#'<xZ=")]) + rng.randbytes(max(size - 1, 0))


# -- listen events ------------------------------------------------------------------------------


@dataclass
class ListenFuzzer:
    """Listen events from schemas/listen-event.v1.json, each valid or broken in one way."""

    rng: random.Random
    limits: Limits
    prefix: str
    schema: dict[str, Any] = field(default_factory=lambda: schemas.load_schema("listen"))
    serial: int = 0

    def __post_init__(self) -> None:
        plain = [f"{self.prefix}-l{i}" for i in range(40)]
        odd = [f"{self.prefix}-{odd_string(self.rng, 12)}" for _ in range(10)]
        self.listeners = plain + odd
        self.kinds: list[tuple[Callable[[], tuple[str, bytes | None, bytes | None, str]], int]] = [
            (self.valid, 12),
            (self.edge_values, 6),
            (self.extra_fields, 8),
            (self.missing_required, 6),
            (self.wrong_type, 8),
            (self.out_of_range, 8),
            (self.bad_enum, 3),
            (self.non_finite, 5),
            (self.not_an_object, 3),
            (self.lone_surrogate, 4),
            (self.invalid_utf8, 3),
            (self.duplicate_keys, 5),
            (self.key_mismatch, 6),
            (self.null_or_empty, 3),
            (self.truncated, 5),
            (self.random_bytes, 4),
            (self.wrapped, 4),
            (self.deep_nesting, 3),
            (self.huge_string, 2),
            (self.many_fields, 1),
            (self.near_max, 1),
        ]

    def message(self) -> Fuzzed:
        """One listen message of a kind drawn by weight."""
        funcs, weights = zip(*self.kinds, strict=True)
        kind, key, value, verdict = self.rng.choices(funcs, weights)[0]()
        return Fuzzed(LISTENS, kind, key, value, verdict)

    def event(self) -> dict[str, Any]:
        """A valid event: required fields always, each optional one half the time."""
        self.serial += 1
        rng = self.rng
        body: dict[str, Any] = {}
        for name, prop in self.schema["properties"].items():
            if name not in self.schema["required"] and rng.random() < 0.5:
                continue
            if name == "listener_id":
                body[name] = rng.choice(self.listeners)
            elif name == "event_id":  # unique: a repeated id is (rightly) a duplicate
                body[name] = f"{self.prefix}-e{self.serial}"
            elif "enum" in prop:
                body[name] = rng.choice(prop["enum"])
            elif prop["type"] == "number":
                low, high = prop.get("minimum", 0), prop.get("maximum", 2e9)
                body[name] = rng.choice([rng.uniform(low, high), int(rng.uniform(low, high))])
            else:
                body[name] = odd_string(rng, min(prop.get("maxLength", 24), 24))
        return body

    def _keyed(self, body: dict[str, Any]) -> bytes:
        return body["listener_id"].encode()

    def valid(self) -> tuple[str, bytes | None, bytes | None, str]:
        body = self.event()
        return "valid", self._keyed(body), dumps(body, self.rng), ACCEPTED

    def edge_values(self) -> tuple[str, bytes | None, bytes | None, str]:
        """Values on the schema's limits, which are still inside them: accepted."""
        body = self.event()
        name, prop = self.rng.choice(list(self.schema["properties"].items()))
        if "maxLength" in prop and name not in ("listener_id", "event_id"):
            body[name] = self.rng.choice(["𝄞", "\x00", "a"]) * prop["maxLength"]
        elif prop.get("type") == "number":
            body[name] = self.rng.choice(
                [prop.get("minimum", 0), prop.get("maximum", 1e300), -0.0, 1e-300]
            )
        return "edge_values", self._keyed(body), dumps(body, self.rng), ACCEPTED

    def extra_fields(self) -> tuple[str, bytes | None, bytes | None, str]:
        """Unknown fields are ignored (the compatibility rule): accepted."""
        body = self.event()
        for _ in range(self.rng.randint(1, 5)):
            name = self.rng.choice(["Listener_ID", "", "ts ", "__proto__", "v2_field"])
            body.setdefault(name + odd_string(self.rng, 4), random_json(self.rng))
        return "extra_fields", self._keyed(body), dumps(body, self.rng), ACCEPTED

    def missing_required(self) -> tuple[str, bytes | None, bytes | None, str]:
        body = self.event()
        key = self._keyed(body)
        del body[self.rng.choice(self.schema["required"])]
        return "missing_required", key, dumps(body, self.rng), "schema"

    def wrong_type(self) -> tuple[str, bytes | None, bytes | None, str]:
        body = self.event()
        key = self._keyed(body)
        name, prop = self.rng.choice(list(self.schema["properties"].items()))
        body[name] = wrong_type_value(self.rng, prop)
        return "wrong_type", key, dumps(body, self.rng), "schema"

    def out_of_range(self) -> tuple[str, bytes | None, bytes | None, str]:
        """A number below minimum / above maximum, a string too short or too long."""
        body = self.event()
        key = self._keyed(body)
        limited = [
            (n, p)
            for n, p in self.schema["properties"].items()
            if {"minimum", "maximum", "minLength", "maxLength"} & set(p)
        ]
        name, prop = self.rng.choice(limited)
        options: list[Any] = []
        if "minimum" in prop:
            options += [prop["minimum"] - d for d in (1e-9, 1, 1e300)]
        if "maximum" in prop:
            options += [prop["maximum"] + d for d in (1e-9, 1, 1e300)]
        if prop.get("minLength", 0) > 0:
            options.append("")
        if "maxLength" in prop:
            over = prop["maxLength"] + self.rng.choice([1, 2, 1000])
            options.append(self.rng.choice(["a", "😀", "\x00"]) * over)
        body[name] = self.rng.choice(options)
        return "out_of_range", key, dumps(body, self.rng), "schema"

    def bad_enum(self) -> tuple[str, bytes | None, bytes | None, str]:
        body = self.event()
        body["event"] = self.rng.choice(["PLAY", "play ", "", "pause", "skip\x00", "plày"])
        return "bad_enum", self._keyed(body), dumps(body, self.rng), "schema"

    def non_finite(self) -> tuple[str, bytes | None, bytes | None, str]:
        """NaN / Infinity literals are not JSON; a number a double cannot hold is refused in a
        known field and, like any unknown field's content, skipped unread in an unknown one."""
        body = self.event()
        key = self._keyed(body)
        name = self.rng.choice(["ts", "dwell_ratio", "extra"])
        body[name] = HOLE
        literal = self.rng.choice([b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e400"])
        unread = name == "extra" and literal[-1:] != b"y" and literal != b"NaN"
        verdict = ACCEPTED if unread else "bad_json"
        return "non_finite", key, fill_hole(dumps(body, self.rng), literal), verdict

    def not_an_object(self) -> tuple[str, bytes | None, bytes | None, str]:
        """Valid JSON that is not an object (the schema's type is object)."""
        body = self.event()
        value = self.rng.choice([[body], "event", 42, None, True, [], 1.5])
        return "not_an_object", self._keyed(body), orjson.dumps(value), "schema"

    def lone_surrogate(self) -> tuple[str, bytes | None, bytes | None, str]:
        """A \\ud800-\\udfff escape without its pair: no Unicode string holds it."""
        body = self.event()
        key = self._keyed(body)
        body[self.rng.choice(["track_id", "listener_id", "note"])] = HOLE
        escape = self.rng.choice([b"\\ud800", b"\\udfff", b"a\\udc00b", b"\\ud83d"])
        return (
            "lone_surrogate",
            key,
            fill_hole(dumps(body, self.rng), b'"' + escape + b'"'),
            ("bad_json"),
        )

    def invalid_utf8(self) -> tuple[str, bytes | None, bytes | None, str]:
        """Bytes in a string that are not UTF-8: refused in a known field; an unknown field's
        string is skipped unread (the compatibility rule ignores unknown fields)."""
        body = self.event()
        key = self._keyed(body)
        name = self.rng.choice(["track_id", "note"])
        body[name] = HOLE
        bad = self.rng.choice([b"\xff", b"\xc0\xaf", b"\xe2\x82", b"\xed\xa0\x80", b"a\x80"])
        verdict = ACCEPTED if name == "note" else "bad_json"
        return "invalid_utf8", key, fill_hole(dumps(body, self.rng), b'"' + bad + b'"'), verdict

    def duplicate_keys(self) -> tuple[str, bytes | None, bytes | None, str]:
        """A field twice: the last one counts (as in every mainstream JSON parser)."""
        body = self.event()
        lid = body["listener_id"]
        key = self._keyed(body)
        name = self.rng.choice(["listener_id", "ts", "event"])
        bad: Any = {"listener_id": f"{lid}-other", "ts": "soon", "event": "pause"}[name]
        good = body.pop(name)
        bad_last = self.rng.random() < 0.5
        first, last = (good, bad) if bad_last else (bad, good)
        raw = dumps(body, self.rng)
        pair = orjson.dumps({name: first})[1:-1] + b"," + orjson.dumps({name: last})[1:-1]
        raw = b"{" + pair + b"," + raw[1:]
        if not bad_last:
            return "duplicate_keys", key, raw, ACCEPTED
        return "duplicate_keys", key, raw, "key_mismatch" if name == "listener_id" else "schema"

    def key_mismatch(self) -> tuple[str, bytes | None, bytes | None, str]:
        """A key that is not the listener_id's UTF-8 bytes (or no key at all)."""
        body = self.event()
        lid = body["listener_id"].encode()
        key = self.rng.choice(
            [
                None,
                b"",
                lid.upper() if lid.upper() != lid else lid + b"X",
                lid + b"\x00",
                b" " + lid,
                lid[:-1] + b"\xff",
                self.rng.choice(self.listeners).encode() + b"-x",
                b"k" * 4096,
            ]
        )
        return "key_mismatch", key, dumps(body, self.rng), "key_mismatch"

    def null_or_empty(self) -> tuple[str, bytes | None, bytes | None, str]:
        """A null value (a tombstone) breaks the schema; zero bytes are not JSON."""
        key = self.rng.choice(self.listeners).encode()
        if self.rng.random() < 0.5:
            return "null_value", key, None, "schema"
        return "empty_value", key, b"", "bad_json"

    def truncated(self) -> tuple[str, bytes | None, bytes | None, str]:
        """A valid event cut short: no prefix of a JSON object is JSON."""
        body = self.event()
        raw = dumps(body, self.rng)
        return "truncated", self._keyed(body), raw[: self.rng.randrange(len(raw))], "bad_json"

    def random_bytes(self) -> tuple[str, bytes | None, bytes | None, str]:
        size = self.rng.choice([1, 2, 16, 100, 1000, 65536])
        key = self.rng.choice(self.listeners).encode()
        return "random_bytes", key, junk_bytes(self.rng, size), "bad_json"

    def wrapped(self) -> tuple[str, bytes | None, bytes | None, str]:
        """Whitespace around an event is JSON; a BOM, a trailer or a second object is not."""
        body = self.event()
        raw = dumps(body, self.rng)
        how = self.rng.choice(["space", "bom", "trailer", "two"])
        if how == "space":
            return "whitespace", self._keyed(body), b" \t\r\n" + raw + b"\n ", ACCEPTED
        out = {
            "bom": b"\xef\xbb\xbf" + raw,
            "trailer": raw + self.rng.choice([b"x", b",", b"}", b"\x00"]),
            "two": raw + raw,
        }[how]
        return f"wrapped_{how}", self._keyed(body), out, "bad_json"

    def deep_nesting(self) -> tuple[str, bytes | None, bytes | None, str]:
        """An unknown field nested deep: fine up to MAX_JSON_DEPTH levels in all, then bad_json."""
        body = self.event()
        depth = self.rng.choice([50, 500, 990, 1000, 1010, 1023, 1024, 1030, 5000, 100_000])
        body["extra"] = HOLE
        raw = fill_hole(dumps(body, self.rng), nested(depth))
        verdict = ACCEPTED if depth + 1 <= MAX_JSON_DEPTH else "bad_json"
        return "deep_nesting", self._keyed(body), raw, verdict

    def huge_string(self) -> tuple[str, bytes | None, bytes | None, str]:
        """A big string: ignored in an unknown field, over maxLength in a known one."""
        body = self.event()
        key = self._keyed(body)
        size = self.rng.choice([10_000, 100_000, 300_000])
        if self.rng.random() < 0.5:
            body["blob"] = self.rng.choice(["x", "é", "😀"]) * size
            return "huge_string", key, orjson.dumps(body), ACCEPTED
        body[self.rng.choice(["track_id", "artist_id", "event_id"])] = "y" * size
        return "huge_string", key, orjson.dumps(body), "schema"

    def many_fields(self) -> tuple[str, bytes | None, bytes | None, str]:
        body = self.event()
        for i in range(self.rng.choice([1000, 20_000])):
            body[f"f{i}"] = i
        return "many_fields", self._keyed(body), dumps(body, self.rng), ACCEPTED

    def near_max(self) -> tuple[str, bytes | None, bytes | None, str]:
        """A message within 64 KiB of the largest the broker takes: padding, or a huge id."""
        body = self.event()
        key = self._keyed(body)
        target = self.limits.max_message_bytes - self.rng.randint(1024, 64 * 1024)
        bad = self.rng.random() < 0.5
        name = "track_id" if bad else "padding"
        body[name] = ""
        room = target - len(orjson.dumps(body)) - len(key)
        body[name] = "p" * room
        return "near_max", key, orjson.dumps(body), "schema" if bad else ACCEPTED


# -- audio chunks -------------------------------------------------------------------------------


#: a mutated chunk: key, value, and what is wrong with its audio (None: nothing by construction)
Mutated = tuple[bytes | None, bytes | None, str | None]


@dataclass
class Chunk:
    """One audio chunk before encoding: the JSON body and how much audio its data holds."""

    body: dict[str, Any]
    seconds: float


@dataclass
class AudioFuzzer:
    """Tracks of audio chunks (schemas/audio-chunk.v1.json), whole or broken in one way.

    Verdicts come from a reference model of the sequence rules: a chunk refused before its
    track is looked at (size, JSON, schema, key) leaves the track as it was; any other refusal
    abandons it, so its later chunks are out of order.
    """

    rng: random.Random
    limits: Limits
    prefix: str
    schema: dict[str, Any] = field(default_factory=lambda: schemas.load_schema("audio_chunk"))
    serial: int = 0
    #: track_id -> (next seq expected, seconds so far) for tracks the worker holds in progress
    open_tracks: dict[str, tuple[int, float]] = field(default_factory=dict)

    MUTATIONS = (
        ("valid", 10),
        ("integral_floats", 2),
        ("extra_fields", 3),
        ("missing_required", 3),
        ("wrong_type", 3),
        ("out_of_range", 3),
        ("unknown_format", 3),
        ("bad_json", 3),
        ("key_mismatch", 3),
        ("null_value", 1),
        ("bad_base64", 3),
        ("garbage_audio", 4),
        ("format_mismatch", 2),
        ("pcm_without_rate", 1),
        ("odd_pcm_bytes", 2),
        ("oversize_chunk", 2),
        ("oversize_message", 1),
        ("too_long_track", 1),
        ("too_little_audio", 1),
        ("swapped", 2),
        ("repeated", 2),
        ("gap", 2),
        ("late_start", 2),
    )

    def scenario(self) -> list[Fuzzed]:
        """One track's chunks, one of them (or their order) broken by a drawn mutation."""
        names, weights = zip(*self.MUTATIONS, strict=True)
        kind = self.rng.choices(names, weights)[0]
        self.serial += 1
        track_id = f"{self.prefix}-t{self.serial}-{odd_string(self.rng, 6)}"
        reordered = kind in ("swapped", "repeated", "gap", "late_start")
        chunks = self.track(track_id, self.rng.randint(2 if reordered else 1, 3))
        if kind == "too_long_track":
            chunks = self.long_track(track_id)
        broken = self.rng.randrange(len(chunks))
        order = list(range(len(chunks)))
        if kind == "swapped":
            i = self.rng.randrange(len(chunks) - 1)
            order[i], order[i + 1] = order[i + 1], order[i]
        elif kind == "repeated":
            order.insert(broken + 1, broken)
        elif kind == "gap":
            order.pop(self.rng.randrange(1, len(chunks)))
        elif kind == "late_start":
            order = order[1:]
        mutate = getattr(self, f"m_{kind}", None)
        out = []
        for i in order:
            key: bytes | None = track_id.encode()
            value: bytes | None = orjson.dumps(chunks[i].body)
            problem = None
            if mutate is not None and i == broken:
                key, value, problem = mutate(chunks[i], track_id.encode())
            label = kind if i == broken or mutate is None else "valid"
            out.append(self.judge(key, value, label, chunks[i].seconds, problem))
        return out

    # the reference model -------------------------------------------------------------------------
    def judge(
        self,
        key: bytes | None,
        value: bytes | None,
        kind: str,
        seconds: float,
        problem: str | None,
    ) -> Fuzzed:
        """The verdict for one chunk message in sending order (updates the open tracks);
        `problem` is what the mutation broke in the audio itself, known from how it was made."""

        def out(verdict: str, completes: bool = False) -> Fuzzed:
            return Fuzzed(AUDIO, kind, key, value, verdict, completes)

        if value is None:
            return out("schema")
        if len(value) > self.limits.max_chunk_message_bytes:
            return out("oversize")
        try:
            body = orjson.loads(value)
        except orjson.JSONDecodeError:
            return out("bad_json")
        if not self._meets_schema(body):
            return out("schema")
        if key != body["track_id"].encode():
            return out("key_mismatch")
        seq, tid = body["seq"], body["track_id"]
        if seq == 0:
            state = (1, 0.0)
        elif tid in self.open_tracks and self.open_tracks[tid][0] == seq:
            state = (seq + 1, self.open_tracks[tid][1])
        else:
            self.open_tracks.pop(tid, None)
            return out("out_of_order")
        self.open_tracks[tid] = state
        problem = self._data_problem(body) or problem
        if problem is None:
            seconds += state[1]
            self.open_tracks[tid] = (state[0], seconds)
            if seconds > self.limits.max_track_seconds:
                problem = "oversize"
            elif body["last"] and seconds < 0.1:
                problem = "bad_audio"  # too little audio to describe
        if problem is not None:
            self.open_tracks.pop(tid, None)
            return out(problem)
        if body["last"]:
            del self.open_tracks[tid]
            return out(ACCEPTED, completes=True)
        return out(ACCEPTED)

    def _meets_schema(self, body: Any) -> bool:
        """The chunk schema, checked by hand from its document (not by the engine's validator)."""
        if not isinstance(body, dict) or not set(self.schema["required"]) <= set(body):
            return False
        for name, prop in self.schema["properties"].items():
            if name in body and not _meets(body[name], prop):
                return False
        return True

    def _data_problem(self, body: dict[str, Any]) -> str | None:
        """bad_audio for data that is not base64, oversize for data over the chunk limit."""
        try:
            raw = base64.b64decode(body["data"], validate=True)
        except ValueError:
            return "bad_audio"
        return "oversize" if len(raw) > self.limits.max_chunk_bytes else None

    # tracks --------------------------------------------------------------------------------------
    def track(self, track_id: str, n: int) -> list[Chunk]:
        """`n` valid chunks of a short track in one format (0.2-0.6 s each, odd sample rates)."""
        fmt = self.rng.choice(["pcm_s16le", "pcm_s16le", "wav", "flac", "ogg"])
        rate = self.rng.choice([4000, 8000, 11025, 22050, 44100])
        channels = self.rng.choice([1, 2]) if fmt == "pcm_s16le" else 1
        chunks = []
        for seq in range(n):
            seconds = self.rng.uniform(0.2, 0.6)
            data = self.audio(fmt, rate, channels, int(seconds * rate))
            body: dict[str, Any] = {
                "track_id": track_id,
                "seq": seq,
                "last": seq == n - 1,
                "format": fmt,
                "data": base64.b64encode(data).decode(),
            }
            if fmt == "pcm_s16le":
                body |= {"sample_rate": rate, "channels": channels}
            if seq == 0 and self.rng.random() < 0.7:
                body["metadata"] = {
                    "artist_id": odd_string(self.rng),
                    "title": odd_string(self.rng),
                }
            chunks.append(Chunk(body, int(seconds * rate) / rate))
        return chunks

    def long_track(self, track_id: str) -> list[Chunk]:
        """Raw PCM chunks near the chunk limit until the track is 1.5x max_track_seconds."""
        rate, frames = 4000, self.limits.max_chunk_bytes // 2 - 64
        per_chunk = frames / rate
        n = math.ceil(self.limits.max_track_seconds * 1.5 / per_chunk)
        chunks = []
        for seq in range(n):
            body = {
                "track_id": track_id,
                "seq": seq,
                "last": seq == n - 1,
                "format": "pcm_s16le",
                "sample_rate": rate,
                "channels": 1,
                "data": base64.b64encode(self.audio("pcm_s16le", rate, 1, frames)).decode(),
            }
            chunks.append(Chunk(body, per_chunk))
        return chunks

    def audio(self, fmt: str, rate: int, channels: int, frames: int) -> bytes:
        """Noise plus a tone, encoded as `fmt` (raw 16-bit PCM or a soundfile container)."""
        t = np.arange(frames) / rate
        tone = 0.3 * np.sin(2 * np.pi * self.rng.uniform(80, 1000) * t)
        noise = np.random.default_rng(self.rng.getrandbits(32)).normal(0, 0.05, (frames, channels))
        samples = np.clip(tone[:, None] + noise, -1, 1).astype(np.float32)
        if fmt == "pcm_s16le":
            return (samples * 32767).astype("<i2").tobytes()
        buffer = io.BytesIO()
        subtype = "VORBIS" if fmt == "ogg" else "PCM_16"
        sf.write(buffer, samples, rate, format=CONTAINERS[fmt], subtype=subtype)
        return buffer.getvalue()

    # mutations of one chunk: (chunk, key) -> (key, value, what is wrong with its audio) ---------
    def m_integral_floats(self, c: Chunk, key: bytes) -> Mutated:
        """seq 1.0, sample_rate 8000.0: integers by JSON Schema's rule (no fraction)."""
        body = {
            k: float(v) if k in ("seq", "sample_rate", "channels") else v for k, v in c.body.items()
        }
        if self.rng.random() < 0.3:
            body["seq"] = float(c.body["seq"]) + 1e300  # far from the seq expected
        return key, orjson.dumps(body), None

    def m_extra_fields(self, c: Chunk, key: bytes) -> Mutated:
        body = dict(c.body, codec_hint=random_json(self.rng), v2={"x": random_json(self.rng)})
        body["metadata"] = dict(body.get("metadata", {}), mood=odd_string(self.rng))
        return key, orjson.dumps(body), None

    def m_missing_required(self, c: Chunk, key: bytes) -> Mutated:
        body = dict(c.body)
        del body[self.rng.choice(self.schema["required"])]
        return key, orjson.dumps(body), None

    def m_wrong_type(self, c: Chunk, key: bytes) -> Mutated:
        body = dict(c.body)
        props = self.schema["properties"]
        name = self.rng.choice([n for n in props if n != "metadata"] + ["metadata.title"])
        if name == "metadata.title":
            body["metadata"] = self.rng.choice([[], "m", 1, {"title": 5}, {"duration_s": "1"}])
        else:
            body[name] = wrong_type_value(self.rng, props[name])
            if name == "last" and isinstance(body[name], bool):
                body[name] = 0  # a boolean is the right type for `last`
        return key, orjson.dumps(body), None

    def m_out_of_range(self, c: Chunk, key: bytes) -> Mutated:
        body = dict(c.body)
        name, bad = self.rng.choice(
            [
                ("seq", -1),
                ("sample_rate", 3999),
                ("sample_rate", 192_001),
                ("channels", 0),
                ("channels", 9),
                ("track_id", ""),
                ("track_id", "t" * 129),
                ("metadata", {"duration_s": -1}),
                ("metadata", {"title": "x" * 513}),
            ]
        )
        body[name] = bad
        return key, orjson.dumps(body), None

    def m_unknown_format(self, c: Chunk, key: bytes) -> Mutated:
        fmt = self.rng.choice(["mp3", "FLAC", "pcm_s24le", "", "aac", "wav\x00"])
        return key, orjson.dumps(dict(c.body, format=fmt)), None

    def m_bad_json(self, c: Chunk, key: bytes) -> Mutated:
        raw = orjson.dumps(c.body)
        how = self.rng.randrange(3)
        if how == 0:
            return key, raw[: self.rng.randrange(len(raw))], None
        if how == 1:
            return key, junk_bytes(self.rng, self.rng.choice([1, 64, 4096])), None
        return key, fill_hole(orjson.dumps(dict(c.body, seq=HOLE)), b"NaN"), None

    def m_key_mismatch(self, c: Chunk, key: bytes) -> Mutated:
        other = self.rng.choice([None, b"", key + b"x", key.upper() + b"!", key[:-1] + b"\xff"])
        return other, orjson.dumps(c.body), None

    def m_null_value(self, c: Chunk, key: bytes) -> Mutated:
        return key, None, None

    def m_bad_base64(self, c: Chunk, key: bytes) -> Mutated:
        data = c.body["data"]
        bad = self.rng.choice([data[:-1] + "!", data + "A", "=" + data, data[:5] + " " + data[5:]])
        return key, orjson.dumps(dict(c.body, data=bad)), None

    def _problem(self, c: Chunk, key: bytes, data: bytes, **more: Any) -> Mutated:
        """The chunk with `data` that does not decode as audio (bad_audio by construction)."""
        body = dict(c.body, data=base64.b64encode(data).decode(), **more)
        return key, orjson.dumps(body), "bad_audio"

    def m_garbage_audio(self, c: Chunk, key: bytes) -> Mutated:
        fmt = self.rng.choice(list(CONTAINERS))
        size = self.rng.choice([1, 44, 1000, 20_000])
        junk = self.rng.randbytes(size)
        if self.rng.random() < 0.3:  # a real header cut before its format chunk, garbage after
            junk = self.audio("wav", 8000, 1, 400)[:12] + junk
            fmt = "wav"
        return self._problem(c, key, junk, format=fmt)

    def m_format_mismatch(self, c: Chunk, key: bytes) -> Mutated:
        actual, declared = self.rng.choice([("wav", "flac"), ("flac", "wav"), ("ogg", "flac")])
        return self._problem(c, key, self.audio(actual, 8000, 1, 2000), format=declared)

    def m_pcm_without_rate(self, c: Chunk, key: bytes) -> Mutated:
        body = {k: v for k, v in c.body.items() if k not in ("sample_rate", "channels")}
        body["format"] = "pcm_s16le"
        return key, orjson.dumps(body), "bad_audio"

    def m_odd_pcm_bytes(self, c: Chunk, key: bytes) -> Mutated:
        data = self.rng.randbytes(self.rng.choice([1, 3, 1001]))
        return self._problem(c, key, data, format="pcm_s16le", sample_rate=8000, channels=2)

    def m_oversize_chunk(self, c: Chunk, key: bytes) -> Mutated:
        """Decoded data just over the chunk limit, the message still under its size check."""
        data = self.rng.randbytes(self.limits.max_chunk_bytes + 2 * self.rng.randint(1, 400))
        body = dict(c.body, data=base64.b64encode(data).decode(), format="pcm_s16le")
        body |= {"sample_rate": 8000, "channels": 1}
        return key, orjson.dumps(body), None

    def m_oversize_message(self, c: Chunk, key: bytes) -> Mutated:
        room = self.limits.max_chunk_message_bytes + self.rng.choice([1, 10_000, 500_000])
        room = min(room, self.limits.max_message_bytes - 4096)
        return key, orjson.dumps(dict(c.body, padding="p" * room)), None

    def m_too_little_audio(self, c: Chunk, key: bytes) -> Mutated:
        body = dict(c.body, seq=0, last=True, format="pcm_s16le", sample_rate=8000, channels=1)
        body["data"] = base64.b64encode(b"\x01\x00" * self.rng.choice([1, 10])).decode()
        c.seconds = 0.0
        return key, orjson.dumps(body), None


def _meets(value: Any, prop: dict[str, Any]) -> bool:
    """A value against one schema property (type, enum, limits, nested object properties)."""
    kind = prop.get("type")
    if "enum" in prop and value not in prop["enum"]:
        return False
    if kind == "object":
        if not isinstance(value, dict):
            return False
        inner = prop.get("properties", {})
        return all(_meets(value[k], p) for k, p in inner.items() if k in value)
    checks: dict[str | None, Callable[[Any], bool]] = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: (
            isinstance(v, int | float) and not isinstance(v, bool) and float(v).is_integer()
        ),  # JSON Schema: a number with no fraction, 2.0 included
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        None: lambda v: True,
    }
    if not checks[kind](value):
        return False
    if isinstance(value, str):
        return prop.get("minLength", 0) <= len(value) <= prop.get("maxLength", math.inf)
    if kind in ("integer", "number"):
        return prop.get("minimum", -math.inf) <= value <= prop.get("maximum", math.inf)
    return True
