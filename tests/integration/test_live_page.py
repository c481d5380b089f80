"""The live listener page (worker/live.py) in a real headless browser (Debian's chromium driven by
Playwright) against a real broker and worker: the page shows the queue with why each track is
there, Skip sends a real listen event through Kafka, and the streamed queue drops the track.

RADIO_SCREENSHOT=docs/live-page.png saves the page after the skip (the README's screenshot);
RADIO_LIVE_MODEL=DIR serves another model directory than the slice's untrained one (the README's
screenshot uses the trained demo model, whose queues show every score part)."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from playwright.sync_api import Page, sync_playwright

from radio_engine import schemas
from radio_engine.settings import Settings
from tests.integration.conftest import (
    WorkerProcess,
    consume,
    send_raw,
    start_worker,
    worker_settings,
)

#: Debian's chromium (scripts/test.sh installs it); Playwright never downloads a browser here
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: the score parts as the page prints them: "gru +0.176 · rules +0.693"
PARTS = r"[a-z_]+ [+-]\d+\.\d{3}( · [a-z_]+ [+-]\d+\.\d{3})*"
LISTENER = "live-listener"
WAIT_MS = 60_000


@pytest.fixture(scope="module")
def worker(
    kafka_settings: Settings, slice_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """One worker (its own topics; exploration off) shared by this module's tests."""
    tmp = tmp_path_factory.mktemp("live")
    app_id = f"t-live-{time.time_ns() % 10**6}"
    model = Path(os.environ.get("RADIO_LIVE_MODEL") or slice_model)
    settings = worker_settings(kafka_settings, tmp, model, app_id, exploration=0.0)
    proc = start_worker(settings, tmp / "worker.log")
    yield proc
    proc.stop()


def send_events(worker: WorkerProcess, tracks: list[str], kinds: list[str]) -> None:
    """Listen events for LISTENER, as a player would send them; wait until all are applied."""
    ts = 1_400_000_000.0
    messages = []
    for i, (track, kind) in enumerate(zip(tracks, kinds, strict=True)):
        body = {"listener_id": LISTENER, "track_id": track, "event": kind, "ts": ts + 200 * i}
        body["event_id"] = f"{LISTENER}-{i}"
        messages.append((LISTENER.encode(), orjson.dumps(body)))
    settings = worker.settings
    send_raw(settings, settings.topic_listens, messages)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if worker.get_json(f"/listeners/{LISTENER}")["events"] == len(tracks):
                return
        except urllib.error.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{len(tracks)} events not applied: {worker.log.read_text()[-2000:]}")


def page_queue(page: Page) -> list[str]:
    return page.eval_on_selector_all("#queue li", "items => items.map(li => li.dataset.track)")


def test_skip_on_the_live_page_goes_through_kafka(
    worker: WorkerProcess, slice_events: list[dict[str, Any]], tmp_path: Path
) -> None:
    tracks = list(dict.fromkeys(e["track_id"] for e in slice_events))[:4]
    send_events(worker, tracks, ["play", "play", "play", "complete"])
    before = worker.get_json(f"/listeners/{LISTENER}")

    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh --user-data-dir
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1000, "height": 800},
        )
        try:
            page = browser.new_page()
            page.goto(worker.url(f"/live/{LISTENER}"))
            page.wait_for_function(
                "document.querySelectorAll('#queue li').length > 0", timeout=WAIT_MS
            )
            version = int(page.text_content("#version") or "0")
            queue = page_queue(page)
            playing = page.get_attribute("#playing", "data-track")
            # the page shows the worker's state: version, queue and, after a complete, its head
            assert version == before["version"] >= 1
            assert queue == before["queue"]
            assert playing == queue[0]
            assert page.text_content("#events") == "4"
            assert page.text_content("#connection") == "live"
            # why each track is there: a score, the rule that placed it and the parts
            first = page.locator("#queue li").first
            assert first.locator(".score").count() == 1
            assert first.locator(".placed").text_content() in {"rank", "artist_spacing"}
            assert re.fullmatch(PARTS, first.locator(".parts").text_content() or ""), PARTS

            page.click("button[data-event=skip]")
            page.wait_for_function(
                """([version, skipped]) =>
                    Number(document.getElementById('version').textContent) > version &&
                    !document.querySelector(`#queue li[data-track="${skipped}"]`)""",
                arg=[version, playing],
                timeout=WAIT_MS,
            )
            page.wait_for_function(  # the POST's answer (where Kafka stored it) and the new queue
                """() => ['sent skip', 'partition', 'applied: queue version'].every(
                    s => document.getElementById('status').textContent.includes(s))""",
                timeout=WAIT_MS,
            )
            after_queue = page_queue(page)
            status = page.text_content("#status") or ""
            if os.environ.get("RADIO_SCREENSHOT"):
                page.screenshot(path=os.environ["RADIO_SCREENSHOT"], full_page=True)
        finally:
            browser.close()

    assert playing not in after_queue and len(after_queue) == len(queue)
    assert f"sent skip of {playing} to Kafka" in status, status
    # the skip went through Kafka like a player's event: on the listens topic, valid, with an id
    settings = worker.settings
    records = consume(settings, settings.topic_listens, lambda got: len(got) >= 5)
    sent = [json.loads(r.value) for r in records if json.loads(r.value)["event"] == "skip"]
    assert len(sent) == 1 and sent[0]["track_id"] == playing
    assert sent[0]["listener_id"] == LISTENER and sent[0]["event_id"]
    schemas.validate("listen", sent[0])
    assert records[-1].key == LISTENER.encode()
    # ... and the worker applied it through the normal path: one more event, the track skipped
    state = worker.get_json(f"/listeners/{LISTENER}")
    assert state["events"] == before["events"] + 1 == 5
    assert state["recent"][-1] == playing and playing in state["skipped"]
    assert state["version"] > version and state["queue"] == after_queue


def test_unknown_listener_and_bad_events_are_refused(worker: WorkerProcess) -> None:
    with pytest.raises(urllib.error.HTTPError) as err:
        worker.get("/live/nobody-here")
    assert err.value.code == 404
    assert "Unknown listener nobody-here" in err.value.read().decode()
    for body, field in [({"track_id": "t1", "event": "rewind"}, "event"), ({"event": "skip"}, "")]:
        request = urllib.request.Request(
            worker.url(f"/live/{LISTENER}/events"), data=orjson.dumps(body), method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=5)
        assert err.value.code == 400
        answer = json.loads(err.value.read())
        assert answer.get("field", "") == field, answer
