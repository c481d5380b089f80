"""Topic contracts: what passes, what is refused and why."""

from __future__ import annotations

import orjson
import pytest

from radio_engine import schemas
from radio_engine.schemas import BadMessage

GOOD = {
    "listener_id": "u1",
    "track_id": "t1",
    "event": "skip",
    "ts": 1_400_000_000.5,
    "dwell_ratio": 0.2,
}


def test_good_listen_event_decodes_to_its_fields() -> None:
    assert schemas.decode("listen", orjson.dumps(GOOD)) == GOOD


@pytest.mark.parametrize(
    ("raw", "reason", "detail"),
    [
        (b"{nope", "bad_json", "not JSON"),
        (orjson.dumps({**GOOD, "event": "rewind"}), "schema", "'rewind'"),
        (orjson.dumps({k: v for k, v in GOOD.items() if k != "ts"}), "schema", "ts"),
        (orjson.dumps({**GOOD, "dwell_ratio": 1.5}), "schema", "1.5"),
        (orjson.dumps({**GOOD, "extra": 1}), "schema", "extra"),
        (orjson.dumps([GOOD]), "schema", "object"),
    ],
)
def test_bad_listen_events_are_refused_with_a_reason(raw: bytes, reason: str, detail: str) -> None:
    with pytest.raises(BadMessage) as info:
        schemas.decode("listen", raw)
    assert info.value.reason == reason
    assert detail in str(info.value)


def test_every_kind_has_a_schema_and_encode_checks_it() -> None:
    for kind in schemas.KINDS:
        assert schemas.load_schema(kind)["type"] == "object"
    with pytest.raises(BadMessage):
        schemas.encode("queue", {"listener_id": "u1"})
    queue = {
        "listener_id": "u1",
        "version": 1,
        "generated_at": 1.0,
        "model_version": "m",
        "tracks": [],
    }
    assert orjson.loads(schemas.encode("queue", queue)) == queue
