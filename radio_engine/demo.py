"""`radio-engine demo`: the whole engine on one machine, on real data, with live queues.

Starts the dev Kafka broker, makes sure a model exists (trains one on ../shared/data the first
time), starts one worker, sends the real game-music clips as audio chunks, replays real 30Music
sessions as live listen events faster than real time, prints a few listeners' queues as they
change, and ends with the numbers from the worker's /metrics. Ctrl-C stops it all cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

from radio_engine.settings import Settings

#: a few malformed inputs sent during the demo so the dead-letter path is visible
BAD_INPUTS: tuple[tuple[bytes, bytes], ...] = (
    (b"demo-bad-1", b"{not json"),
    (b"demo-bad-2", b'{"listener_id": "demo-bad-2", "track_id": "1", "event": "dance", "ts": 1}'),
    (b"demo-bad-3", b'{"listener_id": "demo-bad-3", "event": "play"}'),
)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the demo until it finishes (--duration / all events replayed) or Ctrl-C."""
    from radio_engine.broker.launcher import port_open, running_broker

    # `kill` (SIGTERM) stops the demo like Ctrl-C, worker and broker with it: the command sets
    # that up (radio_engine/lifecycle.py), and a second signal cannot cut the stopping short
    if port_open("127.0.0.1", settings.worker_port):
        raise SystemExit(
            f"radio-engine demo: the worker port {settings.worker_port} is in use (another "
            "worker or demo?); stop it or set RADIO_WORKER_PORT to a free port"
        )
    started = time.monotonic()
    settings = settings.with_overrides(model_dir=args.model)
    model_dir = ensure_model(settings)
    settings = settings.with_overrides(model_dir=str(model_dir))
    print(f"==> model: {model_dir} ({describe_model(model_dir)})", flush=True)
    with running_broker(settings, fresh=True) as broker_settings:
        settings = broker_settings
        print(f"==> Kafka broker (KRaft) on {settings.broker}", flush=True)
        worker = start_worker(settings)
        try:
            wait_for_health(settings, worker)
            print(
                f"==> worker up: metrics http://127.0.0.1:{settings.worker_port}/metrics, "
                f"queues http://127.0.0.1:{settings.worker_port}/queues/<listener_id>",
                flush=True,
            )
            asyncio.run(_feed(settings, args))
        except KeyboardInterrupt as exc:  # Ctrl-C, or lifecycle.StopRequested (SIGTERM)
            print(f"\n==> stopping ({exc or 'Ctrl-C'}): worker, then broker", flush=True)
        finally:
            summary = scrape_summary(settings)
            stop_process(worker)
    print_summary(summary, time.monotonic() - started)
    return 0


def ensure_model(settings: Settings) -> Path:
    """The model to serve: the one named, else <home>/models/current, trained if missing."""
    path = settings.model_path
    if (path / "manifest.json").exists():
        return path
    if settings.model_dir:
        raise SystemExit(f"radio-engine demo: no model at {path}")
    data = settings.data_path
    out = settings.home_path / "models" / time.strftime("model-%Y%m%d-%H%M%S")
    print(
        f"==> no model yet: training one on {data} (real 30Music sessions + real clips)", flush=True
    )
    cmd = [
        sys.executable,
        "-m",
        "radio_engine.cli",
        "train",
        "--events",
        str(data / "30music" / "events.csv"),
        "--audio",
        str(data / "game-music" / "clips"),
        "--metadata",
        str(data / "game-music" / "metadata.csv"),
        "--out",
        str(out),
    ]
    subprocess.run(cmd, check=True)
    current = settings.home_path / "models" / "current"
    if current.is_symlink() or current.exists():
        current.unlink()
    current.symlink_to(out.name)
    return current


def describe_model(model_dir: Path) -> str:
    """One line about a model directory: version and whether its weights were trained."""
    from radio_engine.model.manifest import read_manifest

    manifest = read_manifest(model_dir)
    trained = "trained" if manifest.trained else "UNTRAINED weights"
    return f"version {manifest.version}, {trained}"


def start_worker(settings: Settings) -> subprocess.Popen[bytes]:
    """Start `radio-engine worker` as a child process with the demo's settings."""
    env = dict(os.environ)
    env.update(
        RADIO_BROKER=settings.broker,
        RADIO_MODEL_DIR=settings.model_dir,
        RADIO_WORKER_PORT=str(settings.worker_port),
        RADIO_HOME=settings.home,
    )
    log_path = settings.home_path / "demo-worker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    print(f"==> starting worker (log: {log_path})", flush=True)
    log = open(log_path, "wb")  # noqa: SIM115 - owned by the child for its lifetime
    return subprocess.Popen(
        [sys.executable, "-m", "radio_engine.cli", "worker"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_for_health(
    settings: Settings, worker: subprocess.Popen[bytes], timeout: float = 120
) -> None:
    """Block until the worker answers /health, or fail with its log tail."""
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{settings.worker_port}/health"
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise SystemExit(
                f"worker exited with {worker.returncode}; see {settings.home}/demo-worker.log"
            )
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
            if response.status == 200:
                return
        time.sleep(0.5)
    raise SystemExit(f"worker did not answer {url} within {timeout:.0f} s")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGTERM a child, then SIGKILL it if it has not stopped in time."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def _feed(settings: Settings, args: argparse.Namespace) -> None:
    """Audio, then live events, while printing the watched listeners' queues."""
    from radio_engine.client import RadioClient
    from radio_engine.player.produce_audio import produce_directory
    from radio_engine.player.replay import read_events, replay_events
    from radio_engine.player.tail import format_queue

    data = settings.data_path
    print("==> sending the real game-music clips as audio chunks", flush=True)
    await produce_directory(
        settings, data / "game-music" / "clips", data / "game-music" / "metadata.csv"
    )
    events = read_events(data / "30music" / "events.csv", limit=args.events)
    watched = [
        listener for listener, _ in Counter(e["listener_id"] for e in events).most_common(args.show)
    ]
    print(f"==> replaying {len(events)} real 30Music events at {args.speed:g}x; watching {watched}")
    async with RadioClient(settings=settings) as client:
        for key, value in BAD_INPUTS:  # unchecked on purpose: they must reach the dead letters
            await client.send_bytes(key, value)

        async def show_queues() -> None:
            async with contextlib.aclosing(client.queues(watched)) as queues:
                async for queue in queues:
                    print(f"   queue {format_queue(queue, width=5)} ...", flush=True)

        shower = asyncio.create_task(show_queues())
        # no progress bar here: its carriage returns would garble the live queue lines
        replay = asyncio.create_task(
            replay_events(settings, events, speed=args.speed, rate=None, progress=False)
        )
        try:
            if args.duration:
                await asyncio.wait({replay}, timeout=args.duration)
            else:
                await replay
                await asyncio.sleep(3.0)  # let the last queues arrive
        finally:
            for task in (replay, shower):
                task.cancel()
            await asyncio.gather(replay, shower, return_exceptions=True)


def scrape_summary(settings: Settings) -> dict[str, float]:
    """Totals from the worker's /metrics: events, dead letters, queues, tracks embedded."""
    url = f"http://127.0.0.1:{settings.worker_port}/metrics"
    totals: Counter[str] = Counter()
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            text = response.read().decode()
    except OSError:
        return {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        name, value = line.rsplit(" ", 1)
        base = name.split("{", 1)[0]
        if base in {
            "radio_listen_events_total",
            "radio_dead_letters_total",
            "radio_queues_published_total",
            "radio_tracks_embedded_total",
            "radio_catalog_tracks",
        }:
            totals[base] += float(value)
    return dict(totals)


def print_summary(summary: dict[str, float], seconds: float) -> None:
    """The closing lines of the demo."""
    print("==> demo summary")
    for name in (
        "radio_listen_events_total",
        "radio_dead_letters_total",
        "radio_queues_published_total",
        "radio_tracks_embedded_total",
        "radio_catalog_tracks",
    ):
        print(f"   {name:<32} {summary.get(name, 0):>10.0f}")
    print(f"   {'seconds':<32} {seconds:>10.1f}")
