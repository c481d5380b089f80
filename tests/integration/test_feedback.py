"""The feedback table (README, listeners/feedback.py) on the real broker, row by row, for a new
listener and for a warm one: events through Kafka, the worker's queue before and after each
event, the share of the artist counted, and the published queue messages saying why."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from radio_engine import schemas
from radio_engine.catalog import Catalog
from radio_engine.model.runtime import ServingModel
from radio_engine.settings import Settings
from tests.integration.conftest import (
    WorkerProcess,
    consume_all,
    send_raw,
    start_worker,
    worker_settings,
)

DAY = 86400.0


@pytest.fixture
def worker(kafka_settings: Settings, tmp_path: Path, slice_model: Path) -> Iterator[WorkerProcess]:
    app_id = f"t-feedback-{time.time_ns() % 10**6}"
    # exploration off: every slot is placed by the rules under test
    settings = worker_settings(kafka_settings, tmp_path, slice_model, app_id, exploration=0.0)
    proc = start_worker(settings, tmp_path / "worker.log")
    yield proc
    proc.stop()


class Listener:
    """One listener driven through Kafka: each event waits until the worker has applied it."""

    def __init__(self, worker: WorkerProcess, listener_id: str, artist_of: dict[str, str]):
        self.worker, self.id, self.artist_of = worker, listener_id, artist_of
        self.events, self.ts = 0, 1_400_000_000.0
        self.page: dict[str, Any] = {}

    def send(self, track: str, event: str, after_s: float = 60.0) -> list[str]:
        self.events += 1
        self.ts += after_s
        body = {
            "listener_id": self.id,
            "track_id": track,
            "event": event,
            "ts": self.ts,
            "event_id": f"{self.id}-{self.events}",
        }
        settings = self.worker.settings
        send_raw(settings, settings.topic_listens, [(self.id.encode(), orjson.dumps(body))])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.page = json.loads(self.worker.get(f"/queues/{self.id}"))
            except OSError:
                self.page = {}
            if self.page.get("events") == self.events:
                return self.tracks()
            time.sleep(0.2)
        raise AssertionError(f"{self.id}: event {self.events} not applied: {self.page}")

    def tracks(self) -> list[str]:
        return [t["track_id"] for t in self.page["queue"]]

    def share(self, artist: str) -> int:
        return sum(self.artist_of[t] == artist for t in self.tracks())


def test_feedback_means_what_it_says_for_new_and_warm_listeners(
    worker: WorkerProcess, slice_model: Path, slice_events: list[dict[str, Any]]
) -> None:
    catalog = Catalog.from_model(ServingModel(slice_model))
    artist_of = dict(zip(catalog.ids, catalog.artists, strict=True))
    # the artist under test: one with plenty of tracks; the fillers: artists of one track each
    by_artist = sorted(catalog.artist_rows.items(), key=lambda kv: -len(kv[1]))
    artist, rows = by_artist[0]
    a = [catalog.ids[r] for r in rows]
    assert len(a) >= 10, "the slice catalog needs an artist with 10 tracks"
    fillers = [catalog.ids[r[0]] for name, r in by_artist[1:] if name != artist][:40]

    new = Listener(worker, "fb-new", artist_of)
    warm = Listener(worker, "fb-warm", artist_of)
    for track in fillers[:3]:
        new.send(track, "play")
    real = next(e["listener_id"] for e in slice_events)
    history = [e["track_id"] for e in slice_events if e["listener_id"] == real]
    history = [t for t in history if t in artist_of and artist_of[t] != artist][:30]
    assert len(history) >= 10
    for track in history:  # a real listener's history, replayed as plays
        warm.send(track, "play")

    for who in (new, warm):
        before = who.share(artist)
        # like: the artist rises (spacing allows at most one in three slots)
        assert who.send(a[0], "like") and who.share(artist) >= 2 > before, who.id
        assert all(
            t["why"]["parts"]["feedback"] > 0
            for t in who.page["queue"]
            if artist_of[t["track_id"]] == artist
        )
        # skip: the track and, for a while, its artist go behind every other candidate
        after = who.send(a[1], "skip")
        assert who.share(artist) == 0 and a[1] not in after, who.id
        # complete of one of the artist's tracks forgives the skip: the like raises it again
        who.send(a[2], "complete")
        assert who.share(artist) >= 2, who.id
        # dislike: the track for good, the artist for a long while (days later: still out)
        after = who.send(a[3], "dislike")
        assert who.share(artist) == 0 and a[3] not in after, who.id
        for track in fillers[5:8]:
            after = who.send(track, "complete", after_s=DAY)
            assert who.share(artist) == 0 and a[3] not in after, who.id
        # the page shows the queue as published, with its reasons
        assert who.page["why_known"] and all("why" in t for t in who.page["queue"]), who.id

    # what players saw on the queue topic: every version valid, explained, and the last one
    # equal to the worker's current queue
    published: dict[str, list[dict[str, Any]]] = {}
    for record in consume_all(worker.settings, worker.settings.topic_queues):
        message = schemas.decode("queue", record.value)
        published.setdefault(message["listener_id"], []).append(message)
    for who in (new, warm):
        mine = published[who.id]
        versions = [m["version"] for m in mine]
        assert versions == sorted(set(versions))
        assert all("why" in t and t["why"]["placed"] for m in mine for t in m["tracks"])
        assert [t["track_id"] for t in mine[-1]["tracks"]] == who.tracks()
        # the queue after the dislike event names it as its cause
        disliked = [m for m in mine if m.get("after_event", {}).get("event") == "dislike"]
        assert disliked and a[3] not in {t["track_id"] for t in disliked[0]["tracks"]}
