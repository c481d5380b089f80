"""Each row of the feedback table as queue behaviour, through the plain-function pipeline.

The tiny model has 40 tracks t0..t39 by 8 artists (track i by a{i % 8}); its weights are
random, so whatever a row asserts comes from the feedback rules, not from a lucky model.
Queues hold 10 tracks; artist spacing (one per 3 slots, the last two plays counting) lets an
artist take at most 3 of them, from the third slot on when it was just played.
The same rows run on the real broker in tests/integration/test_feedback.py.
"""

from __future__ import annotations

from typing import Any

import orjson

from radio_engine import schemas
from radio_engine.catalog import Catalog
from radio_engine.listens.decode import InMessage
from radio_engine.listens.pipeline import ListenPipeline
from radio_engine.model.runtime import ServingModel
from radio_engine.selector.blend import BlendWeights
from radio_engine.selector.selector import Selector
from radio_engine.settings import Settings

T0 = 1_400_000_000


class Radio:
    """One listener's radio on the plain pipeline: send events, read the current queue."""

    def __init__(self, model: ServingModel, **overrides: Any) -> None:
        settings = Settings().with_overrides(queue_length=10, exploration=0.0, **overrides)
        catalog = Catalog.from_model(model)
        self.selector = Selector(settings, catalog, model)
        self.pipeline = ListenPipeline(settings, model, catalog, self.selector)
        self.store: dict[bytes, bytes] = {}
        self.offset = 0
        self.queue: dict[str, Any] = {}

    def send(self, track: str, event: str, at_s: float | None = None) -> list[str]:
        self.offset += 1
        ts = T0 + (self.offset * 60 if at_s is None else at_s)
        body = {"listener_id": "u", "track_id": track, "event": event, "ts": ts}
        message = InMessage(b"u", orjson.dumps(body), 0, self.offset, 0.0)
        out = self.pipeline.process([message], self.store.get)
        self.store.update({key: value for key, (_, value) in out.states.items()})
        for q in out.queues:
            self.queue = schemas.decode("queue", q.value)
        return self.tracks()

    def tracks(self) -> list[str]:
        return [t["track_id"] for t in self.queue["tracks"]]


def of_artist(tracks: list[str], artist: int) -> int:
    return sum(int(t[1:]) % 8 == artist for t in tracks)


def warm_up(radio: Radio) -> None:
    for track in ("t1", "t2", "t3"):  # artists a1, a2, a3
        radio.send(track, "play")


def test_a_like_raises_its_artist(tiny_model: ServingModel) -> None:
    radio = Radio(tiny_model)
    warm_up(radio)
    before = of_artist(radio.tracks(), 4)
    after = radio.send("t4", "like")
    assert of_artist(after, 4) == 3 > before  # as many as artist spacing allows
    assert all(
        t["why"]["parts"]["feedback"] > 0 for t in radio.queue["tracks"] if t["artist_id"] == "a4"
    )


def test_a_skip_pushes_the_track_and_its_artist_behind_every_other(
    tiny_model: ServingModel,
) -> None:
    radio = Radio(tiny_model)
    warm_up(radio)
    assert of_artist(radio.send("t4", "like"), 4) == 3
    after = radio.send("t12", "skip")  # a4 again
    assert of_artist(after, 4) == 0 and "t12" not in after


def test_a_run_of_skips_takes_the_artist_out_until_the_while_is_over(
    tiny_model: ServingModel,
) -> None:
    radio = Radio(tiny_model, skip_artist_s=3600.0)
    warm_up(radio)
    radio.send("t4", "like")
    radio.send("t12", "skip")
    radio.send("t20", "skip")
    for track in ("t5", "t6", "t7"):  # other artists, within the hour
        assert of_artist(radio.send(track, "complete"), 4) == 0
    # two hours later the skips have expired and the like raises a4 again
    assert of_artist(radio.send("t9", "play", at_s=3 * 3600), 4) == 2  # t12, t20 are recent


def test_a_dislike_removes_the_track_for_good_and_the_artist_for_a_long_while(
    tiny_model: ServingModel,
) -> None:
    radio = Radio(tiny_model, dislike_artist_s=30 * 86400.0)
    warm_up(radio)
    radio.send("t4", "like")
    assert of_artist(radio.send("t28", "dislike"), 4) == 0
    day = 86400
    for i, track in enumerate(("t5", "t6", "t7", "t9", "t10")):  # days later, other artists
        tracks = radio.send(track, "complete", at_s=(i + 1) * day)
        assert of_artist(tracks, 4) == 0 and "t28" not in tracks
    assert "t28" not in radio.send("t11", "play", at_s=40 * day)  # the track: for good


def test_session_signals_follow_the_last_accepted_track_not_a_skip(
    tiny_model: ServingModel,
) -> None:
    radio = Radio(tiny_model)
    radio.selector.weights = BlendWeights(
        gru=0.0, rules=0.0, last_artist=1.0, session_artist=0.0, in_session=0.0, popularity=0.0
    )
    warm_up(radio)
    radio.send("t5", "complete")  # a5 is the last accepted artist
    radio.send("t14", "skip")  # a6 skipped: not the last artist, and pushed back
    tracks = radio.queue["tracks"]
    assert max(tracks, key=lambda t: t["score"])["artist_id"] == "a5"
    for t in tracks:
        assert t["why"]["parts"]["artist"] == (1.0 if t["artist_id"] == "a5" else 0.0)
        assert t["artist_id"] != "a6"


def test_a_queue_says_why_each_track_is_there(tiny_model: ServingModel) -> None:
    radio = Radio(tiny_model)
    radio.selector.weights = BlendWeights(gru=1.0, last_artist=5.0, popularity=0.0)
    warm_up(radio)
    radio.send("t5", "play")
    tracks = radio.queue["tracks"]
    for t in tracks:
        parts = t["why"]["parts"]
        assert set(parts) == {"gru", "rules", "artist", "session", "popularity", "feedback"}
        assert abs(sum(parts.values()) - t["score"]) < 1e-3
    # a5's tracks lead by score, but a5 was just played: the first waits for the third slot
    a5 = [i for i, t in enumerate(tracks) if t["artist_id"] == "a5"]
    assert a5[0] == 2 and tracks[2]["score"] > tracks[0]["score"]
    assert tracks[2]["why"]["placed"] == "artist_spacing"
    assert tracks[0]["why"]["placed"] == "rank"
    assert {t["why"]["placed"] for t in tracks} <= {"rank", "artist_spacing"}
