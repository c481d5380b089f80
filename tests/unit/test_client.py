"""The Python client without a broker: events checked before they leave, event ids, and
dead-letter records as a player sees them (and as `radio-engine dead-letters` prints them)."""

from __future__ import annotations

import base64
import json
import time
import uuid

import orjson
import pytest

from radio_engine import schemas
from radio_engine.client import (
    DeadLetter,
    InvalidEvent,
    RadioClient,
    check_listen_event,
    listen_event,
)
from radio_engine.dead_letters import dead_letter
from radio_engine.player.commands import format_json, format_row, table_header
from radio_engine.settings import Settings


def test_a_listen_event_gets_now_and_a_uuid4_and_only_the_fields_given() -> None:
    before = time.time()
    event = listen_event("40265", "1818271", "skip", dwell_ratio=0.25)
    assert set(event) == {"listener_id", "track_id", "event", "ts", "event_id", "dwell_ratio"}
    assert before <= event["ts"] <= time.time()
    assert uuid.UUID(event["event_id"]).version == 4
    assert listen_event("40265", "1818271", "skip")["event_id"] != event["event_id"]
    given = listen_event("l", "t", "like", ts=1.5e9, artist_id="a1", event_id="player-7")
    assert (given["ts"], given["artist_id"], given["event_id"]) == (1.5e9, "a1", "player-7")
    assert schemas.decode("listen", schemas.encode("listen", given)) == given


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"event": "dance"}, "event", "must be one of"),
        ({"dwell_ratio": 1.5}, "dwell_ratio", "smaller than or equal to 1"),
        ({"dwell_ratio": -0.1}, "dwell_ratio", "bigger than or equal to 0"),
        ({"ts": -1.0}, "ts", "bigger than or equal to 0"),
        ({"ts": float("nan")}, "ts", "finite"),
        ({"listener_id": ""}, "listener_id", "longer than or equal to 1"),
        ({"track_id": None}, "track_id", "must be string"),
        ({"artist_id": "x" * 129}, "artist_id", "shorter than or equal to 128"),
        ({"event_id": 7}, "event_id", "must be string"),
    ],
)
def test_a_bad_field_is_refused_by_name_before_sending(
    changes: dict[str, object], field: str, words: str
) -> None:
    args: dict[str, object] = {"listener_id": "l", "track_id": "t", "event": "play"}
    args.update(changes)
    positional = [args.pop(k) for k in ("listener_id", "track_id", "event")]
    with pytest.raises(InvalidEvent) as caught:
        listen_event(*positional, **args)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert str(caught.value).startswith(f"invalid listen event: {field} ")
    assert words in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_a_missing_required_field_is_named() -> None:
    with pytest.raises(InvalidEvent, match="invalid listen event: track_id is required"):
        check_listen_event({"listener_id": "l", "event": "play", "ts": 1.0})


def test_the_client_takes_the_bootstrap_address_over_the_settings_broker() -> None:
    settings = Settings(broker="10.0.0.1:9092", topic_listens="mine.listens")
    assert RadioClient("127.0.0.1:1", settings).settings.broker == "127.0.0.1:1"
    kept = RadioClient(settings=settings).settings
    assert (kept.broker, kept.topic_listens) == ("10.0.0.1:9092", "mine.listens")


def letter(value: bytes, key: bytes | None = b"40265") -> DeadLetter:
    """A dead letter as the worker encodes it, decoded as the client reads it."""
    raw = dead_letter(
        "schema",
        "data.event must be one of ['play', 'skip']",
        topic="radio.listens.v1",
        partition=3,
        offset=41,
        key=key,
        value=value,
    )
    return DeadLetter.from_record(schemas.decode("dead_letter", raw))


def test_a_dead_letter_keeps_the_original_bytes_and_shows_them_short() -> None:
    payload = orjson.dumps({"listener_id": "40265", "track_id": "1", "event": "dance", "ts": 1})
    got = letter(payload)
    assert (got.reason, got.topic, got.partition, got.offset) == (
        "schema",
        "radio.listens.v1",
        3,
        41,
    )
    assert (got.key, got.value) == (b"40265", payload)
    assert got.preview(200) == payload.decode()
    assert got.preview(20) == payload.decode()[:17] + "..."
    assert abs(got.failed_at - time.time()) < 60
    binary = letter(b"\xff\xfe\x00audio", key=None)
    assert binary.preview() == "<8 bytes, not UTF-8: fffe00617564696f>"
    assert binary.to_json()["value"] is None and binary.to_json()["key"] is None
    assert base64.b64decode(binary.to_json()["value_b64"]) == b"\xff\xfe\x00audio"


def test_the_dead_letter_table_and_json_lines() -> None:
    got = letter(b"{not json\n  at all")
    row = format_row(got)
    assert table_header().split() == ["time", "reason", "read", "from", "error", "payload"]
    assert row.startswith(got.time + "  schema ")
    assert "radio.listens.v1[3]@41" in row and row.endswith("{not json at all")
    line = format_json(got)
    assert "\n" not in line
    decoded = json.loads(line)
    assert decoded["reason"] == "schema" and decoded["key"] == "40265"
    assert decoded["value"] == "{not json\n  at all" and decoded["offset"] == 41
    assert decoded["error"].startswith("data.event must be one of")
