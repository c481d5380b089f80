"""Hostile input in process: what the fuzzer (tests/fuzz_messages.py) found, pinned one case at a
time, its verdicts against the decoders directly, and schema-driven hypothesis properties."""

from __future__ import annotations

import base64
import random
from collections import Counter
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radio_engine import schemas
from radio_engine.audio.assembly import AudioAssembler
from radio_engine.dead_letters import VALUE_KEPT_MAX, dead_letter
from radio_engine.listens.decode import InMessage, decode_listens
from radio_engine.schemas import BadMessage
from tests.fuzz_messages import ACCEPTED, LISTENS, Limits, generate, random_json

EVENT = {"listener_id": "u1", "track_id": "t1", "event": "play", "ts": 1.0}
LIMITS = Limits(max_chunk_bytes=64 * 1024, max_track_seconds=30.0, max_message_bytes=2 << 20)


def listen_verdict(key: bytes | None, value: bytes | None) -> str:
    """What decode_listens does with one record: ACCEPTED or its dead-letter reason."""
    refused: list[Any] = []
    decode_listens([InMessage(key, value, 0, 1, 0.0)], "l", lambda t: "a", refused, Counter())
    return refused[0][2] if refused else ACCEPTED


def assembler() -> AudioAssembler:
    """An assembler with the fuzz limits and a stand-in encoder (the verdicts do not use it)."""
    return AudioAssembler(
        lambda frames: np.zeros(8, np.float32),
        "v",
        max_chunk_bytes=LIMITS.max_chunk_bytes,
        max_track_seconds=LIMITS.max_track_seconds,
    )


def chunk(**over: Any) -> bytes:
    pcm = (np.sin(np.arange(4000) / 5) * 9000).astype("<i2").tobytes()
    body = {"track_id": "t1", "seq": 0, "last": True, "format": "pcm_s16le"}
    body |= {"sample_rate": 8000, "channels": 1, "data": base64.b64encode(pcm).decode()}
    return orjson.dumps(body | over)


# -- regressions: each was a wrong verdict or a crash the fuzzer found ---------------------------


def nested_in_unknown_field(depth: int) -> bytes:
    """An event whose unknown field holds arrays nested `depth` levels (depth + 1 in all)."""
    return orjson.dumps({**EVENT, "x": None}).replace(b"null", b"[" * depth + b"]" * depth)


@pytest.mark.parametrize(
    ("depth", "verdict"), [(1001, ACCEPTED), (1023, ACCEPTED), (1024, "bad_json")]
)
def test_deep_nesting_in_an_unknown_field_is_ignored_not_an_internal_error(
    depth: int, verdict: str
) -> None:
    # msgspec recursed past Python's limit: RecursionError, and the whole batch went to "internal"
    assert listen_verdict(b"u1", nested_in_unknown_field(depth)) == verdict


def test_a_field_given_twice_counts_its_last_value_in_both_decoders() -> None:
    # the one-pass decoder refused a bad first occurrence that orjson (last one counts) overrides
    raw = b'{"ts":"soon","ts":5,"listener_id":"u1","track_id":"t1","event":"play"}'
    assert schemas.decode("listen", raw)["ts"] == 5
    assert schemas.struct_decoder("listen")(raw).ts == 5.0
    assert listen_verdict(b"u1", raw) == ACCEPTED
    assert listen_verdict(b"u1", raw.replace(b'"ts":5,', b'"ts":5,"ts":-1,')) == "schema"


def test_a_record_without_a_key_is_a_key_mismatch() -> None:
    # a keyless record lands on any partition, so another worker's state would take it
    assert listen_verdict(None, orjson.dumps(EVENT)) == "key_mismatch"
    with pytest.raises(BadMessage) as info:
        assembler().accept(None, chunk())
    assert info.value.reason == "key_mismatch"


def test_an_audio_key_is_compared_as_bytes() -> None:
    # "t\ufffd" once matched the key b"t\xff" (decoded with errors="replace")
    with pytest.raises(BadMessage) as info:
        assembler().accept(b"t\xff", chunk(track_id="t\ufffd"))
    assert info.value.reason == "key_mismatch"
    assert assembler().accept("t\ufffd".encode(), chunk(track_id="t\ufffd")) is not None


def test_integral_floats_are_integers_in_a_chunk() -> None:
    # JSON Schema takes 1.0 as an integer; numpy's reshape did not (TypeError: "internal")
    a = assembler()
    assert a.accept(b"t1", chunk(seq=0.0, last=False, channels=1.0, sample_rate=8000.0)) is None
    assert a.accept(b"t1", chunk(seq=1.0, channels=1.0)) is not None
    with pytest.raises(BadMessage) as info:
        a.accept(b"t1", chunk(seq=1e300))
    assert info.value.reason == "out_of_order"


def test_a_null_audio_chunk_is_a_schema_refusal_not_an_internal_error() -> None:
    with pytest.raises(BadMessage) as info:  # was TypeError (len(None)): reason "internal"
        assembler().accept(b"t1", None)
    assert info.value.reason == "schema"


@pytest.mark.parametrize("data", ["=AAAA", "AAA", "AA AA", "A!AA"])
def test_data_that_is_not_base64_is_bad_audio_whatever_the_flaw(data: str) -> None:
    # the schema validator asserted contentEncoding leniently: some flaws were "schema", and a
    # "schema" refusal leaves the track open while bad_audio abandons it
    a = assembler()
    assert a.accept(b"t1", chunk(last=False)) is None
    with pytest.raises(BadMessage) as info:
        a.accept(b"t1", chunk(seq=1, data=data))
    assert info.value.reason == "bad_audio"
    assert "t1" not in a.in_progress


def test_a_huge_refused_value_keeps_its_start_and_its_length() -> None:
    # a whole 2 MiB value, base64 in the letter, is over the worker producer's request limit
    value = b"v" * (2 << 20)
    letter = schemas.decode(
        "dead_letter",
        dead_letter("schema", "x", topic="l", partition=0, offset=3, key=b"k", value=value),
    )
    assert letter["value_truncated"] is True and letter["value_bytes"] == len(value)
    assert base64.b64decode(letter["value_b64"]) == value[:VALUE_KEPT_MAX]
    small = schemas.decode(
        "dead_letter",
        dead_letter("schema", "x", topic="l", partition=0, offset=3, key=None, value=b"v"),
    )
    assert "value_truncated" not in small and base64.b64decode(small["value_b64"]) == b"v"


# -- the generator's verdicts, in process ----------------------------------------------------------


def test_generated_messages_get_their_verdicts_from_the_decoders() -> None:
    """The same messages the broker test sends, through the decoding code alone (fast)."""
    a = assembler()
    wrong = []
    for m in generate(600, seed=11, limits=LIMITS):
        if m.topic == LISTENS:
            got = listen_verdict(m.key, m.value)
        else:
            try:
                a.accept(m.key, m.value)
                got = ACCEPTED
            except BadMessage as exc:
                got = exc.reason
        if got != m.verdict:
            wrong.append((m.topic, m.kind, m.verdict, got))
    assert wrong == []


# -- properties (hypothesis), driven by the listen schema ----------------------------------------

SCHEMA = schemas.load_schema("listen")
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(fields=st.dictionaries(st.sampled_from([*SCHEMA["properties"], "extra"]), json_values))
def test_the_one_pass_decoder_agrees_with_the_validator_on_any_json(fields: dict[str, Any]) -> None:
    """Any JSON values in the schema's fields: both decoders give the same verdict."""
    raw = orjson.dumps({**EVENT, **fields})
    try:
        expected = ("ok", schemas.decode("listen", raw))
    except BadMessage as exc:
        expected = (exc.reason, None)
    try:
        body = schemas.struct_decoder("listen")(raw)
        got = ("ok", {k: getattr(body, k) for k in SCHEMA["properties"] if k in expected[1] or {}})
    except BadMessage as exc:
        got = (exc.reason, None)
    assert got[0] == expected[0]
    if got[0] == "ok":
        assert got[1] == {k: v for k, v in expected[1].items() if k in SCHEMA["properties"]}


@settings(max_examples=300, deadline=None, derandomize=True)
@given(key=st.none() | st.binary(max_size=8), value=st.none() | st.binary(max_size=300))
def test_no_bytes_make_the_decoders_raise_anything_but_a_refusal(
    key: bytes | None, value: bytes | None
) -> None:
    listen_verdict(key, value)  # never raises: a refusal is a dead letter
    with pytest.raises(BadMessage):
        assembler().accept(key, value)


def test_random_json_values_are_json() -> None:
    rng = random.Random(3)
    for _ in range(200):
        value = random_json(rng)
        assert orjson.loads(orjson.dumps(value)) == value
