"""The worker on a real Kafka broker: events in -> queues out, audio -> catalog -> queues,
bad input -> dead letters while good input flows, and listener state surviving a restart."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from radio_engine import schemas
from radio_engine.audio.files import TrackFile
from radio_engine.player.produce_audio import produce_tracks
from radio_engine.player.replay import replay_events
from radio_engine.settings import Settings
from radio_engine.training.export import export_random_model
from tests.integration.conftest import (
    WorkerProcess,
    consume,
    consume_all,
    send_raw,
    start_worker,
    wait_for_metric,
    worker_settings,
)

CLIPS = Settings().data_path / "game-music" / "clips"


@pytest.fixture
def worker(
    kafka_settings: Settings, tmp_path: Path, slice_model: Path, request: pytest.FixtureRequest
) -> Any:
    settings = worker_settings(
        kafka_settings,
        tmp_path,
        slice_model,
        f"t-{request.node.name[-20:]}-{time.time_ns() % 10**6}",
    )
    proc = start_worker(settings, tmp_path / "worker.log")
    yield proc
    proc.stop()


def queues_by_listener(records: list[Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        q = orjson.loads(r.value)
        out.setdefault(q["listener_id"], []).append(q)
    return out


def test_events_in_queues_out_for_many_listeners(
    worker: WorkerProcess, slice_events: list[dict[str, Any]]
) -> None:
    settings = worker.settings
    stats = asyncio.run(replay_events(settings, slice_events, progress=False))
    listeners = {e["listener_id"] for e in slice_events}
    assert stats.events == 1200 and len(listeners) == 60
    wait_for_metric(worker, 'radio_listen_events_total{event="play",outcome="applied"} 1200.0')
    records = consume_all(settings, settings.topic_queues)
    by_listener = queues_by_listener(records)
    assert set(by_listener) == listeners
    assert all(orjson.loads(r.value)["listener_id"] == r.key.decode() for r in records)
    for listener, queues in by_listener.items():
        versions = [q["version"] for q in queues]
        assert versions == sorted(versions) and len(set(versions)) == len(versions), listener
        for q in queues:
            schemas.validate("queue", q)
            assert len(q["tracks"]) == settings.queue_length
            assert len({t["track_id"] for t in q["tracks"]}) == settings.queue_length
    # the current queue never holds what the listener played in its last history_length events
    for listener, queues in by_listener.items():
        mine = [e["track_id"] for e in slice_events if e["listener_id"] == listener]
        assert not set(mine[-settings.history_length :]) & {
            t["track_id"] for t in queues[-1]["tracks"]
        }
    assert json.loads(worker.get("/health"))["listeners_held"] == 60
    for listener in sorted(listeners)[:5]:  # the web page shows the same current queue
        page = json.loads(worker.get(f"/queues/{listener}"))
        assert [t["track_id"] for t in page["queue"]] == [
            t["track_id"] for t in by_listener[listener][-1]["tracks"]
        ]
        assert page["version"] == by_listener[listener][-1]["version"]


def test_bad_messages_go_to_dead_letters_while_good_ones_flow(worker: WorkerProcess) -> None:
    settings = worker.settings
    good = {"listener_id": "dl-good", "track_id": "t1", "event": "play", "ts": 1_400_000_000}
    bad = [
        (b"dl-1", b"{not json"),
        (b"dl-2", orjson.dumps({**good, "listener_id": "dl-2", "event": "dance"})),
        (b"dl-3", orjson.dumps({"listener_id": "dl-3", "event": "play"})),
        (b"someone-else", orjson.dumps({**good, "listener_id": "dl-4"})),
    ]
    send_raw(settings, settings.topic_listens, [bad[0], (b"dl-good", orjson.dumps(good)), *bad[1:]])
    letters = consume(settings, settings.topic_dead_letters, lambda got: len(got) >= 4)
    # keyed by listener, so spread over partitions: compare by key, not by arrival order
    decoded = {r.key: schemas.decode("dead_letter", r.value) for r in letters}
    reasons = {key: d["reason"] for key, d in decoded.items()}
    assert reasons == {
        b"dl-1": "bad_json",
        b"dl-2": "schema",
        b"dl-3": "schema",
        b"someone-else": "key_mismatch",
    }
    assert {key: base64.b64decode(d["value_b64"]) for key, d in decoded.items()} == dict(bad)
    assert all(d["topic"] == settings.topic_listens and d["offset"] >= 0 for d in decoded.values())
    assert "dance" in decoded[b"dl-2"]["error"]
    queues = consume(
        settings, settings.topic_queues, lambda got: any(r.key == b"dl-good" for r in got)
    )
    assert any(orjson.loads(r.value)["listener_id"] == "dl-good" for r in queues)
    metrics = worker.get("/metrics").decode()
    assert (
        f'radio_dead_letters_total{{reason="schema",topic="{settings.topic_listens}"}} 2.0'
        in metrics
    )


def test_producers_a_version_ahead_or_behind_are_served(worker: WorkerProcess) -> None:
    """schemas/README.md: unknown fields ignored, newest optional fields may be missing,
    a missing required field refused with its name."""
    settings = worker.settings
    base = {"track_id": "t1", "event": "play", "ts": 1_400_000_000}
    ahead = {**base, "listener_id": "v-ahead", "device": "car", "context": {"mood": "calm"}}
    behind = {**base, "listener_id": "v-behind"}
    broken = {"listener_id": "v-broken", "event": "play", "ts": 1_400_000_000}
    send_raw(
        settings,
        settings.topic_listens,
        [(m["listener_id"].encode(), orjson.dumps(m)) for m in (ahead, behind, broken)],
    )
    queues = consume(
        settings,
        settings.topic_queues,
        lambda got: {b"v-ahead", b"v-behind"} <= {r.key for r in got},
    )
    served = {r.key for r in queues}
    assert {b"v-ahead", b"v-behind"} <= served and b"v-broken" not in served
    [letter] = consume(settings, settings.topic_dead_letters, lambda got: len(got) >= 1)
    refused = schemas.decode("dead_letter", letter.value)
    assert refused["reason"] == "schema" and "track_id" in refused["error"]


def test_worker_restart_keeps_listener_state(
    kafka_settings: Settings, tmp_path: Path, slice_model: Path, slice_events: list[dict[str, Any]]
) -> None:
    settings = worker_settings(
        kafka_settings, tmp_path, slice_model, f"restart-{time.time_ns() % 10**6}"
    )
    listener = slice_events[0]["listener_id"]
    mine = [e for e in slice_events if e["listener_id"] == listener]
    assert len(mine) >= 4
    first = start_worker(settings, tmp_path / "worker1.log")
    try:
        asyncio.run(replay_events(settings, mine[:-1], progress=False))
        before = wait_for_listener(first, listener, events=len(mine) - 1)
    finally:
        first.stop()
    # a fresh process with an empty data dir: the state can only come from the Kafka changelog
    fresh = settings.with_overrides(worker_data_dir=str(tmp_path / "fresh-data"))
    second = start_worker(fresh, tmp_path / "worker2.log")
    try:
        recovered = wait_for_listener(second, listener, events=len(mine) - 1)
        assert recovered["version"] == before["version"]
        # the same tracks; why each is there is known only to the worker that published them
        assert [t["track_id"] for t in recovered["queue"]] == [
            t["track_id"] for t in before["queue"]
        ]
        assert before["why_known"] and not recovered["why_known"]
        asyncio.run(replay_events(settings, mine[-1:], progress=False))
        after = wait_for_listener(second, listener, events=len(mine))
    finally:
        second.stop()
    # it continued the listener's history (events and versions), it did not start over
    assert after["recent"][-1] == mine[-1]["track_id"]
    assert after["version"] >= before["version"]


def wait_for_listener(
    worker: WorkerProcess, listener: str, events: int, timeout: float = 60
) -> dict[str, Any]:
    """Poll /queues/<listener> until the worker has applied `events` of that listener's events."""
    deadline = time.monotonic() + timeout
    page: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            page = json.loads(worker.get(f"/queues/{listener}"))
        except OSError:  # 404 until the listener's first batch lands
            page = {}
        if page.get("events") == events:
            return page
        time.sleep(0.3)
    raise AssertionError(
        f"listener {listener}: {page.get('events')} events applied, expected {events}"
    )


def test_audio_becomes_a_catalog_track_that_reaches_queues(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    # a tiny learned catalog (3 tracks) so the 2 tracks known only by audio must fill the queue
    model = export_random_model(tmp_path / "tiny", ["a", "b", "c"], ["x", "y", "z"])
    settings = worker_settings(
        kafka_settings, tmp_path, model, f"audio-{time.time_ns() % 10**6}", queue_length=4
    )
    clips = sorted(CLIPS.glob("*/*.ogg"))[:2]
    worker = start_worker(settings, tmp_path / "worker.log")
    try:
        tracks = [
            TrackFile(p, f"clip-{i}", {"artist_id": f"composer-{i}"}) for i, p in enumerate(clips)
        ]
        stats = asyncio.run(produce_tracks(settings, tracks, progress=False))
        assert stats.chunks >= 6  # 30 s clips at 10 s a chunk
        records = consume(settings, settings.topic_tracks, lambda got: len(got) >= 2)
        embedded = {r.key.decode(): schemas.decode("track", r.value) for r in records}
        assert set(embedded) == {"clip-0", "clip-1"}
        assert all(
            len(t["embedding"]) == 32 and t["audio_seconds"] == pytest.approx(30, abs=0.5)
            for t in embedded.values()
        )
        deadline = time.monotonic() + 30
        while (
            json.loads(worker.get("/health"))["catalog_tracks"] < 5 and time.monotonic() < deadline
        ):
            time.sleep(0.3)
        assert json.loads(worker.get("/health"))["catalog_tracks"] == 5
        event = {"listener_id": "fan", "track_id": "a", "event": "play", "ts": 1_400_000_000}
        send_raw(settings, settings.topic_listens, [(b"fan", orjson.dumps(event))])
        queues = consume(
            settings, settings.topic_queues, lambda got: any(r.key == b"fan" for r in got)
        )
        queue = [t["track_id"] for t in orjson.loads(queues[-1].value)["tracks"]]
        assert {"clip-0", "clip-1"} <= set(queue) and "a" not in queue
    finally:
        worker.stop()
