"""The Python client and its commands against a real broker and one running worker: events sent
change the listener's queue and state (/listeners/<id>), a retry is applied once, refused input
shows up in `radio-engine dead-letters`, and no broker is one clear line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import sys
import time
import urllib.error
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from radio_engine.broker.launcher import free_port
from radio_engine.client import DeadLetter, Delivery, RadioClient, listen_event, partition_for
from radio_engine.model.manifest import read_manifest
from radio_engine.settings import Settings
from radio_engine.worker.process import settings_env
from tests.integration.conftest import WorkerProcess, send_raw, start_worker, worker_settings


@pytest.fixture(scope="module")
def worker(
    kafka_settings: Settings, slice_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """One worker (its own topics) shared by this module's tests."""
    tmp = tmp_path_factory.mktemp("client")
    app_id = f"client-{time.time_ns() % 10**6}"
    proc = start_worker(worker_settings(kafka_settings, tmp, slice_model, app_id), tmp / "w.log")
    yield proc
    proc.stop()


def radio_engine(
    settings: Settings, *argv: str, timeout: float = 60
) -> subprocess.CompletedProcess:
    """Run the `radio-engine` CLI in a child process with these settings as RADIO_* variables."""
    env = settings_env(settings)
    env["PYTHONWARNINGS"] = "default"  # an unclosed Kafka client would warn on stderr
    return subprocess.run(
        [sys.executable, "-m", "radio_engine.cli", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_for_state(
    worker: WorkerProcess, listener: str, events: int, timeout: float = 60
) -> dict[str, Any]:
    """Poll /listeners/<listener> until the worker has applied `events` of its events."""
    deadline = time.monotonic() + timeout
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        with contextlib.suppress(urllib.error.HTTPError):  # 404 until the first event lands
            state = worker.get_json(f"/listeners/{listener}")
        if state.get("events") == events:
            return state
        time.sleep(0.3)
    raise AssertionError(f"{listener}: {state.get('events')} events applied, expected {events}")


def test_events_sent_by_the_client_change_the_queue_and_a_retry_counts_once(
    worker: WorkerProcess, slice_events: list[dict[str, Any]], slice_model: Path
) -> None:
    settings = worker.settings
    listener = f"client-{uuid.uuid4().hex[:6]}"
    tracks = list(dict.fromkeys(e["track_id"] for e in slice_events))[:4]
    t0 = 1_400_000_000.0

    async def send_all() -> tuple[list[Delivery], dict[str, Any]]:
        async with RadioClient(settings=settings) as client:
            first = listen_event(listener, tracks[0], "play", ts=t0)
            sent = [await client.send_event(first)]
            sent.append(await client.send(listener, tracks[1], "skip", ts=t0 + 20, dwell_ratio=0.1))
            sent.append(await client.send(listener, tracks[2], "play", ts=t0 + 60))
            state = await asyncio.to_thread(wait_for_state, worker, listener, 3)
            latest: dict[str, Any] = {}
            stream = client.queues([listener], timeout=30)
            async with contextlib.aclosing(stream) as queues:
                async for queue in queues:
                    latest = queue
                    if queue["version"] == state["version"]:
                        break
            # the same event again (a player's retry), then a new one behind it on the partition
            sent.append(await client.send_event(first))
            sent.append(await client.send(listener, tracks[3], "play", ts=t0 + 300))
        return sent, {"state": state, "queue": latest}

    sent, seen = asyncio.run(send_all())
    state, queue = seen["state"], seen["queue"]
    assert sent[3].event_id == sent[0].event_id and uuid.UUID(sent[0].event_id).version == 4
    assert {d.partition for d in sent} == {partition_for(listener, settings.topic_partitions)}
    assert [d.offset for d in sent] == sorted(d.offset for d in sent)
    assert all(d.topic == settings.topic_listens for d in sent)
    # the state the worker holds after three events, and the queue it published from it
    hidden = read_manifest(slice_model).dims.hidden
    assert state["events"] == 3 and state["event_ids_kept"] == 3
    assert state["hidden_size"] == len(state["h"]) == hidden
    assert all(isinstance(x, float) for x in state["h"])
    assert (state["last_offset"], state["last_ts"]) == (sent[2].offset, t0 + 60)
    assert queue["version"] == state["version"] >= 1
    assert [t["track_id"] for t in queue["tracks"]] == state["queue"]
    assert queue["model_version"] == state["model_version"]
    assert tracks[2] in state["recent"] and tracks[2] not in state["queue"]
    # the retry was recognised: only the new event after it counted
    after = wait_for_state(worker, listener, 4)
    assert after["event_ids_kept"] == 4 and after["last_offset"] == sent[4].offset
    with pytest.raises(urllib.error.HTTPError) as missing:
        worker.get("/listeners/nobody-at-all")
    assert missing.value.code == 404
    assert "unknown listener 'nobody-at-all'" in json.loads(missing.value.read())["error"]


def test_the_send_command_prints_where_the_event_landed(worker: WorkerProcess) -> None:
    settings = worker.settings
    listener = f"cli-{uuid.uuid4().hex[:6]}"
    argv = ["send", "--listener", listener, "--track", "t1", "--event", "play"]
    done = radio_engine(settings, *argv, "--ts", "1400000000", "--event-id", "cli-event-1")
    assert done.returncode == 0, done.stderr
    found = re.fullmatch(
        rf"event_id cli-event-1 -> {re.escape(settings.topic_listens)} "
        r"partition (\d+) offset (\d+)\n",
        done.stdout,
    )
    assert found, done.stdout
    assert int(found[1]) == partition_for(listener, settings.topic_partitions)
    state = wait_for_state(worker, listener, 1)
    assert state["last_offset"] == int(found[2]) and state["last_ts"] == 1_400_000_000
    assert state["event_ids_kept"] == 1 and state["version"] >= 1


def test_refused_input_shows_in_the_dead_letters_command(worker: WorkerProcess) -> None:
    settings = worker.settings
    tag = uuid.uuid4().hex[:6]
    bad = {
        f"dl-{tag}-1".encode(): b"{not json",
        f"dl-{tag}-2".encode(): orjson.dumps(
            {"listener_id": f"dl-{tag}-2", "track_id": "t1", "event": "dance", "ts": 1}
        ),
    }
    send_raw(settings, settings.topic_listens, list(bad.items()))

    async def wait_for_letters() -> list[DeadLetter]:
        got: list[DeadLetter] = []
        async with RadioClient(settings=settings) as client:
            stream = client.dead_letters(follow=True, timeout=60)
            async with contextlib.aclosing(stream) as letters:
                async for letter in letters:
                    got += [letter] if letter.key in bad else []
                    if len(got) == len(bad):
                        break
        return got

    followed = {d.key: d for d in asyncio.run(wait_for_letters())}
    assert {k: d.reason for k, d in followed.items()} == {
        f"dl-{tag}-1".encode(): "bad_json",
        f"dl-{tag}-2".encode(): "schema",
    }
    done = radio_engine(settings, "dead-letters", "--json")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    mine = {d["key"]: d for d in lines if d["key"] and d["key"].startswith(f"dl-{tag}")}
    assert {k: d["reason"] for k, d in mine.items()} == {
        f"dl-{tag}-1": "bad_json",
        f"dl-{tag}-2": "schema",
    }
    assert {k.encode(): d["value"].encode() for k, d in mine.items()} == bad
    assert "dance" in mine[f"dl-{tag}-2"]["error"]
    assert all(d["topic"] == settings.topic_listens for d in mine.values())

    table = radio_engine(settings, "dead-letters", "--limit", "1")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split()[:2] == ["time", "reason"] and len(rows) == 1
    assert any(
        rows[0].startswith(d["time"]) and f"  {d['reason']} " in rows[0] and d["topic"] in rows[0]
        for d in lines
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["send", "--listener", "L", "--track", "T", "--event", "play"],
        ["dead-letters"],
        ["tail", "--listener", "L", "--timeout", "5"],
    ],
)
def test_without_a_broker_each_command_says_so_in_one_line(argv: list[str]) -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    done = radio_engine(Settings(broker=address), *argv, timeout=30)
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith(f"radio-engine {argv[0]}: cannot reach a Kafka broker at {address}")
    assert "`radio-engine broker start`" in line
