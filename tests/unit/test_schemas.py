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
        (orjson.dumps([GOOD]), "schema", "object"),
    ],
)
def test_bad_listen_events_are_refused_with_a_reason(raw: bytes, reason: str, detail: str) -> None:
    with pytest.raises(BadMessage) as info:
        schemas.decode("listen", raw)
    assert info.value.reason == reason
    assert detail in str(info.value)


def test_a_producer_one_version_ahead_or_behind_is_served() -> None:
    """schemas/README.md: unknown fields are ignored, newer optional fields may be missing."""
    ahead = {**GOOD, "device": "car", "context": {"playlist": "p1"}}
    behind = {k: GOOD[k] for k in ("listener_id", "track_id", "event", "ts")}
    for body in (ahead, behind):
        raw = orjson.dumps(body)
        assert schemas.decode("listen", raw) == body
        fast = schemas.struct_decoder("listen")(raw)
        assert (fast.listener_id, fast.event, fast.ts) == ("u1", "skip", GOOD["ts"])
    assert schemas.struct_decoder("listen")(orjson.dumps(behind)).dwell_ratio is None
    for kind in schemas.KINDS:
        assert schemas.load_schema(kind).get("additionalProperties") is True, kind


@pytest.mark.parametrize("missing", ["listener_id", "track_id", "event", "ts"])
def test_a_missing_required_field_is_refused_with_its_name(missing: str) -> None:
    raw = orjson.dumps({k: v for k, v in GOOD.items() if k != missing})
    for decode in (lambda r: schemas.decode("listen", r), schemas.struct_decoder("listen")):
        with pytest.raises(BadMessage, match=missing) as info:
            decode(raw)
        assert info.value.reason == "schema"


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


def listen_cases() -> list[bytes]:
    """Good and bad listen messages, one per rule of the schema (and a few real events)."""
    from radio_engine.player.replay import read_events
    from radio_engine.settings import Settings

    real = read_events(Settings().data_path / "30music" / "events.csv", limit=200)
    changes: list[dict[str, object]] = [
        {},
        {"ts": 0},
        {"ts": 17},
        {"ts": -1},
        {"ts": True},
        {"ts": "1"},
        {"ts": None},
        {"listener_id": ""},
        {"listener_id": "x" * 128},
        {"listener_id": "x" * 129},
        {"listener_id": 7},
        {"track_id": "ü" * 128},
        {"event": "rewind"},
        {"event": "like"},
        {"dwell_ratio": 0},
        {"dwell_ratio": 1},
        {"dwell_ratio": 1.0001},
        {"dwell_ratio": -0.1},
        {"artist_id": ""},
        {"artist_id": None},
        {"event_id": "e" * 129},
        {"event_id": "retry-1"},
        {"extra": 1},
    ]
    cases = [orjson.dumps({**GOOD, **change}) for change in changes]
    cases += [orjson.dumps({k: v for k, v in GOOD.items() if k != name}) for name in GOOD]
    cases += [b"{nope", b"[]", b"null", b'"play"', b"{}", b"", b'{"a":1}x']
    return cases + [orjson.dumps(e) for e in real]


def verdict(decode: object, raw: bytes) -> str:
    try:
        decode(raw)  # type: ignore[operator]
    except BadMessage as exc:
        return exc.reason
    return "ok"


def test_the_fast_listen_decoder_agrees_with_the_schema_validator() -> None:
    fast = schemas.struct_decoder("listen")
    cases = listen_cases()
    verdicts = [
        (verdict(fast, raw), verdict(lambda r: schemas.decode("listen", r), raw)) for raw in cases
    ]
    assert all(a == b for a, b in verdicts), [
        (raw, a, b) for raw, (a, b) in zip(cases, verdicts, strict=True) if a != b
    ]
    assert {a for a, _ in verdicts} == {"ok", "schema", "bad_json"}
    body = fast(orjson.dumps(GOOD))
    assert (body.listener_id, body.event, body.ts, body.dwell_ratio) == (
        "u1",
        "skip",
        1.4e9 + 0.5,
        0.2,
    )
    assert body.artist_id is None and body.event_id is None


def test_a_schema_the_fast_decoder_cannot_express_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot express"):
        schemas.struct_decoder("queue")  # nested arrays of objects
