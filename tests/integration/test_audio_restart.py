"""Audio that survives restarts, on the real broker with a real clip: a worker SIGKILLed after
some of a track's chunks arrived finishes the track after its restart, with the embedding a run
without the crash gives, nothing dead-lettered, no chunk lost or counted twice."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
from aiokafka.admin import AIOKafkaAdminClient

from radio_engine import schemas
from radio_engine.audio.files import TrackFile
from radio_engine.player.produce_audio import chunk_messages
from radio_engine.settings import Settings
from radio_engine.worker.audio import audio_group
from tests.integration.conftest import (
    WorkerProcess,
    consume,
    send_raw,
    start_worker,
    wait_for_metric,
    worker_settings,
)

CLIP = Settings().data_path / "game-music" / "clips" / "asc-music" / "frontiers.ogg"


def committed(settings: Settings) -> int | None:
    """The audio group's committed offset on the audio topic's one partition (None: none)."""

    async def go() -> int | None:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.broker)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(audio_group(settings))
        finally:
            await admin.close()
        found = [meta.offset for tp, meta in offsets.items() if tp.topic == settings.topic_audio]
        return found[0] if found else None

    return asyncio.run(go())


def wait_committed(settings: Settings, offset: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = committed(settings)
        if seen == offset:
            return
        time.sleep(0.3)
    raise AssertionError(f"audio group committed {seen}, expected {offset}")


def metric(worker: WorkerProcess, sample: str) -> float:
    """The value of one sample line of /metrics (0 when absent)."""
    for line in worker.get("/metrics").decode().splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_worker_killed_mid_track_finishes_the_track_after_its_restart(
    kafka_settings: Settings, slice_model: Path, tmp_path: Path
) -> None:
    settings = worker_settings(
        kafka_settings, tmp_path, slice_model, f"audio-restart-{time.time_ns() % 10**6}"
    )
    meta = {"artist_id": "composer", "title": "Frontiers"}
    whole = chunk_messages(TrackFile(CLIP, "whole", meta), "flac", chunk_seconds=5.0)
    cut = chunk_messages(TrackFile(CLIP, "cut", meta), "flac", chunk_seconds=5.0)
    assert len(whole) == len(cut) == 6  # a 30 s clip in 5 s chunks
    accepted = 'radio_audio_chunks_total{outcome="accepted"}'

    first = start_worker(settings, tmp_path / "first.log")
    try:
        # the run without a crash: offsets 0-5, the same audio under another id
        send_raw(settings, settings.topic_audio, [(b"whole", m) for m in whole])
        consume(settings, settings.topic_tracks, lambda got: any(r.key == b"whole" for r in got))
        # half of the other track (offsets 6-8), and the worker has taken it in
        send_raw(settings, settings.topic_audio, [(b"cut", m) for m in cut[:3]])
        wait_for_metric(first, f"{accepted} 9.0")
        # committed: everything before the unfinished track's first chunk, and no further
        wait_committed(settings, 6)
        time.sleep(2.0)  # well past any commit the chunks just taken in could cause
        assert committed(settings) == 6
    finally:
        first.kill()  # SIGKILL: nothing flushed, nothing handed over

    restarted = start_worker(settings, tmp_path / "restarted.log")
    try:
        sentinel = (b"sentinel", b"{not json")  # a refusal, so the dead letters are known read
        send_raw(settings, settings.topic_audio, [*((b"cut", m) for m in cut[3:]), sentinel])
        records = consume(
            settings, settings.topic_tracks, lambda got: any(r.key == b"cut" for r in got), 120
        )
        tracks = {r.key: schemas.decode("track", r.value) for r in records}
        before, after = tracks[b"whole"], tracks[b"cut"]
        assert np.allclose(after["embedding"], before["embedding"], atol=1e-6)
        assert after["audio_seconds"] == before["audio_seconds"]  # no chunk lost or doubled
        same = ("artist_id", "title", "duration_s", "model_version")
        assert {k: after.get(k) for k in same} == {k: before.get(k) for k in same}
        letters = consume(
            settings,
            settings.topic_dead_letters,
            lambda got: any(r.key == b"sentinel" for r in got),
        )
        refused = [(r.key, schemas.decode("dead_letter", r.value)["offset"]) for r in letters]
        assert refused == [(b"sentinel", 12)]  # nothing of the cut track
        # the restart read the cut track's first three chunks again and took the last three:
        # six accepted; it embedded that track alone (the finished one lay before the commit)
        wait_for_metric(restarted, f"{accepted} 6.0")
        assert metric(restarted, "radio_tracks_embedded_total") == 1.0
        assert metric(restarted, 'radio_audio_chunks_total{outcome="dead_letter"}') == 1.0
        wait_committed(settings, 13)
    finally:
        restarted.stop()
