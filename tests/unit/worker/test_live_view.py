"""What the live page (worker/live.py) streams: which track is playing after each kind of event,
the published reasons when they match the state's version, and the page file itself."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from radio_engine.catalog import Catalog
from radio_engine.listeners.state import ListenerState
from radio_engine.model.inputs import FEEDBACK_INDEX
from radio_engine.worker.live import live_html, live_view


def engine(published: dict[str, Any] | None) -> Any:
    """The parts of the engine the view reads: a real catalog, the last published queue."""
    ids = ["t1", "t2", "t3", "t4"]
    catalog = Catalog.from_arrays(
        ids, ["a1", "a2", "a3", "a4"], np.zeros((4, 2), np.float32), np.zeros((4, 2), np.float32)
    )
    listens = SimpleNamespace(last_queue=lambda listener_id: published)
    return SimpleNamespace(catalog=catalog, listens=listens, model=SimpleNamespace(version="m1"))


def state(last_event: str | None, version: int = 3) -> ListenerState:
    recent = ["t1"] if last_event else []
    kinds = bytes([FEEDBACK_INDEX[last_event]]) if last_event else b""
    return ListenerState(
        h=np.zeros(2, np.float32),
        version=version,
        events=len(recent),
        recent=recent,
        recent_artists=["a1"] * len(recent),
        recent_kinds=kinds,
        queue=["t2", "t3"],
    )


@pytest.mark.parametrize(
    ("last_event", "playing", "source"),
    [
        ("play", "t1", "last_event"),
        ("like", "t1", "last_event"),
        ("complete", "t2", "queue"),
        ("skip", "t2", "queue"),
        ("dislike", "t2", "queue"),
        (None, "t2", "queue"),
    ],
)
def test_the_listener_stays_on_a_played_or_liked_track_else_the_queue_head_plays(
    last_event: str | None, playing: str, source: str
) -> None:
    view = live_view("L", ListenerState.from_bytes(state(last_event).to_bytes()), engine(None))
    assert view["playing"]["track_id"] == playing and view["playing"]["from"] == source
    assert view["playing"]["artist_id"] == "a" + playing[1:]
    assert [t["track_id"] for t in view["queue"]] == ["t2", "t3"]
    assert view["last_event"] == ({"track_id": "t1", "event": last_event} if last_event else None)
    assert (view["version"], view["model_version"], view["why_known"]) == (3, "m1", False)


def test_reasons_are_shown_only_for_the_version_they_were_published_with() -> None:
    tracks = [
        {"track_id": "t2", "score": 0.5, "why": {"placed": "rank", "parts": {"gru": 0.5}}},
        {"track_id": "t3", "score": 0.4, "why": {"placed": "exploration", "parts": {"gru": 0.4}}},
    ]
    published = {"listener_id": "L", "version": 3, "tracks": tracks}
    assert live_view("L", state("skip"), engine(published))["queue"] == tracks
    assert live_view("L", state("skip"), engine(published))["why_known"] is True
    newer = live_view("L", state("skip", version=4), engine(published))
    assert newer["why_known"] is False and "why" not in newer["queue"][0]


def test_the_page_is_one_self_contained_file() -> None:
    page = live_html()
    assert "new EventSource(eventsUrl)" in page and 'data-event="skip"' in page
    assert "http://" not in page and "https://" not in page  # nothing loads from the network
    assert len(page.splitlines()) < 250
