"""The player tools on a real Kafka broker: replayed 30Music events, real audio clips as ordered
chunks that re-assemble to the track, and tail following a queue produced by hand."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import time
import uuid
from collections import Counter
from typing import Any

import numpy as np
import pytest

from radio_engine import schemas
from radio_engine.audio.decode import decode_chunk, load_audio_file
from radio_engine.broker.topics import ensure_topics_sync
from radio_engine.cli import main
from radio_engine.client import RadioClient, partition_for
from radio_engine.player.kafka_io import make_producer
from radio_engine.player.replay import read_events, replay_events
from radio_engine.settings import Settings
from tests.integration.conftest import consume

DATA = Settings.from_env().data_path
EVENTS_CSV = DATA / "30music" / "events.csv"
GAME_MUSIC = DATA / "game-music"


@pytest.fixture
def settings(kafka_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """This test's own topics (4 partitions for listens/queues) on the session's broker; the
    same names in RADIO_* so CLI runs in this test use them too."""
    prefix = f"player-{uuid.uuid4().hex[:8]}"
    names = {
        "topic_listens": f"{prefix}.listens",
        "topic_queues": f"{prefix}.queues",
        "topic_audio": f"{prefix}.audio",
        "topic_tracks": f"{prefix}.tracks",
        "topic_dead_letters": f"{prefix}.dead-letters",
    }
    ours = kafka_settings.with_overrides(**names)
    ensure_topics_sync(ours)
    for field, value in {**names, "broker": ours.broker}.items():
        monkeypatch.setenv(f"RADIO_{field.upper()}", value)
    return ours


def read_topic(settings: Settings, topic: str, count: int, timeout: float = 60) -> list[Any]:
    """The first `count` records of a topic (all partitions, from the start), in each
    partition's offset order; then a second more to catch any record beyond them."""
    reached: dict[str, float] = {}

    def done(got: list[Any]) -> bool:
        if len(got) < count:
            return False
        reached.setdefault("at", time.monotonic())
        return time.monotonic() - reached["at"] >= 1.0

    return consume(settings, topic, done, timeout)


def send(settings: Settings, topic: str, messages: list[tuple[str, bytes]]) -> list[Any]:
    """Send keyed messages one by one (default partitioner); their record metadata."""

    async def go() -> list[Any]:
        producer = make_producer(settings)
        await producer.start()
        try:
            return [
                await producer.send_and_wait(topic, value=value, key=key.encode())
                for key, value in messages
            ]
        finally:
            await producer.stop()

    return asyncio.run(go())


def listen_fields(e: dict[str, Any]) -> tuple[Any, ...]:
    return (e["listener_id"], e["track_id"], e.get("artist_id"), e["event"], e["ts"])


def test_replay_puts_a_real_slice_on_the_listens_topic_keyed_by_listener(
    settings: Settings,
) -> None:
    events = read_events(EVENTS_CSV, limit=400, listeners=25)
    listeners = {e["listener_id"] for e in events}
    stats = asyncio.run(replay_events(settings, events, progress=False))
    assert (stats.events, stats.listeners) == (400, len(listeners))

    records = read_topic(settings, settings.topic_listens, 400)
    assert len(records) == 400
    got = [schemas.decode("listen", r.value) for r in records]
    for record, event in zip(records, got, strict=True):
        assert record.key == event["listener_id"].encode()
        assert record.partition == partition_for(event["listener_id"], 4)
    assert len({r.partition for r in records}) > 1
    assert Counter(map(listen_fields, got)) == Counter(map(listen_fields, events))
    assert len({e["event_id"] for e in got}) == 400
    # each listener's events arrive in the order they happened (one partition per listener)
    for listener in listeners:
        mine = [listen_fields(e) for e in got if e["listener_id"] == listener]
        assert mine == [listen_fields(e) for e in events if e["listener_id"] == listener]


def test_the_replay_command_paces_a_real_slice_and_sends_it_whole(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    # a speed-up and a rate cap: the pacing path, every event still delivered exactly once
    argv = ["replay", str(EVENTS_CSV), "--listeners", "5", "--limit", "60"]
    assert main([*argv, "--speed", "200000", "--rate", "400"]) == 0
    out = capsys.readouterr().out
    assert "replay: 60 events from" in out and settings.topic_listens in out
    records = read_topic(settings, settings.topic_listens, 60)
    assert len(records) == 60
    expected = read_events(EVENTS_CSV, limit=60, listeners=5)
    got = [schemas.decode("listen", r.value) for r in records]
    assert Counter(map(listen_fields, got)) == Counter(map(listen_fields, expected))


def test_produce_audio_sends_two_real_clips_as_ordered_chunks_that_reassemble(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = GAME_MUSIC / "clips" / "asc-music"
    metadata = GAME_MUSIC / "metadata.csv"
    argv = ["produce-audio", str(folder), "--metadata", str(metadata), "--limit", "2"]
    assert main([*argv, "--chunk-seconds", "8"]) == 0
    assert "produce-audio: 2 tracks as 8 chunks" in capsys.readouterr().out

    with open(metadata, newline="") as f:
        rows = {r["clip_id"]: r for r in csv.DictReader(f)}
    files = sorted(folder.glob("*.ogg"))[:2]
    by_path = {(GAME_MUSIC / r["clip_path"]).resolve(): r for r in rows.values()}
    expected_ids = [by_path[p.resolve()]["clip_id"] for p in files]

    records = read_topic(settings, settings.topic_audio, 8)
    assert len(records) == 8  # 30 s clips at 8 s a chunk: 4 chunks each
    tracks: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        chunk = schemas.decode("audio_chunk", r.value)
        assert r.key == chunk["track_id"].encode()
        assert len(r.value) < 1024 * 1024
        tracks.setdefault(chunk["track_id"], []).append(chunk)
    assert sorted(tracks) == sorted(expected_ids)

    for path, track_id in zip(files, expected_ids, strict=True):
        chunks = tracks[track_id]
        assert [c["seq"] for c in chunks] == [0, 1, 2, 3]
        assert [c["last"] for c in chunks] == [False, False, False, True]
        row = rows[track_id]
        assert chunks[0]["metadata"]["artist_id"] == (row["artist"] or row["game"])
        assert chunks[0]["metadata"]["title"] == row["title"]
        original, rate = load_audio_file(path)
        parts = [decode_chunk(base64.b64decode(c["data"]), c["format"]) for c in chunks]
        audio = np.concatenate([p for p, _ in parts])
        assert {r for _, r in parts} == {rate}
        assert len(audio) == len(original) == round(30.0 * rate)
        # FLAC is lossless at 16 bits; Vorbis decodes a few samples past full scale: clipped
        expected = np.clip(original, -1.0, 1.0)
        assert np.max(np.abs(audio - expected)) <= 1.0 / 32768 + 1e-7


def queue_message(listener: str, version: int, first_track: str) -> bytes:
    return schemas.encode(
        "queue",
        {
            "listener_id": listener,
            "version": version,
            "generated_at": time.time(),
            "model_version": "by-hand",
            "after_event": {"track_id": "1818271", "event": "play", "ts": 1397982525.0},
            "tracks": [
                {"track_id": first_track, "artist_id": "228054", "score": 0.75},
                {"track_id": "t-2", "score": 0.5},
            ],
        },
    )


def neighbours(listener: str) -> tuple[str, str]:
    """A listener id on the same partition of 4 as `listener`, and one on another partition."""
    ids = [f"listener-{i}" for i in range(100)]
    home = partition_for(listener, 4)
    same = next(i for i in ids if i != listener and partition_for(i, 4) == home)
    other = next(i for i in ids if partition_for(i, 4) != home)
    return same, other


def test_tail_prints_the_newest_versions_of_one_listeners_queue(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    me = "40265"
    same, other = neighbours(me)
    sent = send(
        settings,
        settings.topic_queues,
        [
            (me, queue_message(me, 1, "first-v1")),
            (same, queue_message(same, 9, "not-mine")),
            (me, queue_message(me, 3, "first-v3")),
            (me, b"{not json"),
            (me, queue_message(me, 2, "stale-v2")),
            (other, queue_message(other, 5, "not-mine")),
        ],
    )
    assert sent[0].partition == partition_for(me, 4) == sent[1].partition != sent[5].partition

    assert main(["tail", "--listener", me, "--timeout", "4"]) == 0
    out = capsys.readouterr().out
    headers = [line for line in out.splitlines() if not line.startswith(" ")]
    assert [h.split(" at ")[0] for h in headers] == [f"{me} v1", f"{me} v3"]
    assert "   1. first-v1 (228054) 0.750" in out and "   1. first-v3 (228054) 0.750" in out
    assert "stale-v2" not in out and "not-mine" not in out

    assert main(["tail", "--listener", "nobody-here", "--timeout", "2"]) == 1


def test_client_queues_shows_the_current_queue_then_each_new_version(settings: Settings) -> None:
    me = "2831"
    send(settings, settings.topic_queues, [(me, queue_message(me, v, f"v{v}")) for v in (1, 2)])

    async def go() -> list[int]:
        seen: list[int] = []

        async def follow() -> None:
            async with RadioClient(settings=settings) as client:
                stream = client.queues([me], timeout=60)
                async with contextlib.aclosing(stream) as queues:
                    async for queue in queues:
                        seen.append(queue["version"])
                        if queue["version"] == 4:
                            return

        task = asyncio.create_task(follow())
        deadline = time.monotonic() + 30
        while seen != [1, 2] and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert seen == [1, 2]
        producer = make_producer(settings)
        await producer.start()
        try:
            for version in (2, 4):  # a repeat of v2 and a new v4
                value = queue_message(me, version, f"v{version}")
                await producer.send_and_wait(settings.topic_queues, value=value, key=me.encode())
        finally:
            await producer.stop()
        await asyncio.wait_for(task, 30)
        return seen

    assert asyncio.run(go()) == [1, 2, 4]
