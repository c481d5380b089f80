"""Stopping, for real: with its broker SIGKILLed, a worker, `tail`, `replay` and `dead-letters
--follow` each stop within seconds of SIGTERM or SIGINT, the Kafka clients' retries are a
handful of log lines, and `tail`'s stdout holds only queues; left alone, `replay` gives up with
one line saying how far it got; SIGTERM to `radio-engine demo` leaves no process it started."""

from __future__ import annotations

import contextlib
import csv
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from radio_engine.broker.launcher import broker_for, free_port
from radio_engine.settings import Settings
from radio_engine.worker.process import start_command
from tests.integration.conftest import send_raw, start_worker, worker_settings

#: seconds the broker stays away before the stop signals (its clients retry all along)
OUTAGE_S = 12.0
#: what "within a few seconds" means here: the stop grace (6 s by default) and some slack
STOP_WITHIN_S = 12.0
HEADER = re.compile(
    r"^\S+ v\d+ at \d\d:\d\d:\d\d\.\d{3}( after \w+ \S+)? \(model \S+, \d+ tracks\)$"
)
TRACK = re.compile(r"^ +\d+\. \S+( \(\S+\))? -?\d+\.\d{3}( \*)?$")


def wait_for(check: Any, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def stop_all(procs: dict[str, subprocess.Popen[Any]], signum: int) -> dict[str, tuple[Any, float]]:
    """Send `signum` to each at once; each one's exit code (None: still running) and seconds."""
    began = time.monotonic()
    for proc in procs.values():
        proc.send_signal(signum)
    ended: dict[str, tuple[Any, float]] = {}
    while len(ended) < len(procs) and time.monotonic() - began < 60:
        for name, proc in procs.items():
            if name not in ended and proc.poll() is not None:
                ended[name] = (proc.returncode, time.monotonic() - began)
        time.sleep(0.05)
    for name, proc in procs.items():
        if name not in ended:
            ended[name] = (None, time.monotonic() - began)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    return ended


def error_lines(text: str) -> int:
    return sum("ERROR" in line for line in text.splitlines())


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_with_the_broker_gone_worker_tail_replay_and_dead_letters_stop_within_seconds(
    slice_model: Path, slice_events: list[dict[str, Any]], tmp_path: Path, signum: int
) -> None:
    with broker_for(Settings.from_env(), isolated=True) as broker:
        base = broker.settings.with_overrides(topic_partitions=4)
        settings = worker_settings(base, tmp_path, slice_model, "lifecycle")
        worker = start_worker(settings, tmp_path / "worker.log")
        procs: dict[str, subprocess.Popen[Any]] = {"worker": worker.proc}
        try:
            listener = slice_events[0]["listener_id"]
            mine = [e for e in slice_events if e["listener_id"] == listener][:3]
            send_raw(
                settings,
                settings.topic_listens,
                [(listener.encode(), _listen_json(e, i)) for i, e in enumerate(mine)],
            )
            procs["tail"] = start_command(
                settings, tmp_path, "tail", "tail", "--listener", listener
            )
            wait_for(lambda: _lines(tmp_path / "tail.out"), "tail to print the listener's queue")
            procs["dead-letters"] = start_command(
                settings, tmp_path, "dead-letters", "dead-letters", "--follow"
            )
            events_csv = tmp_path / "events.csv"
            _write_events(events_csv, slice_events)
            procs["replay"] = start_command(
                settings, tmp_path, "replay", "replay", str(events_csv), "--rate", "20"
            )
            time.sleep(3.0)  # replay sends for a while
            assert procs["replay"].poll() is None, (tmp_path / "replay.err").read_text()
            worker_errors_before = error_lines(worker.log.read_text(errors="replace"))
            tail_errors_before = error_lines((tmp_path / "tail.err").read_text())
            broker.crash()
            time.sleep(OUTAGE_S)
            assert all(p.poll() is None for p in procs.values()), "all still running"
            ended = stop_all(procs, signum)
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
    for name, (code, seconds) in ended.items():
        assert code is not None and seconds <= STOP_WITHIN_S, (name, code, seconds)
    # the worker cannot commit or leave its group without a broker: the stop ends at its grace
    assert ended["worker"][0] in (0, 128 + signum), ended
    assert ended["tail"][0] == ended["replay"][0] == ended["dead-letters"][0] == 128 + signum, ended
    # tail: stdout is queues only, every line parses, the errors went to stderr, rate-limited
    out = _lines(tmp_path / "tail.out")
    assert out and all(HEADER.match(line) or TRACK.match(line) for line in out), out
    tail_errors = error_lines((tmp_path / "tail.err").read_text()) - tail_errors_before
    worker_errors = error_lines(worker.log.read_text(errors="replace")) - worker_errors_before
    print(
        f"{OUTAGE_S:.0f} s outage: ERROR lines worker {worker_errors}, tail {tail_errors}; {ended}"
    )
    assert 0 < tail_errors <= 10, (tmp_path / "tail.err").read_text()
    assert 0 < worker_errors <= 30, worker.log.read_text(errors="replace")[-3000:]


#: how long a replay may take to give up once its broker is gone (the producer's request
#: timeout is 40 s; then it must exit on its own)
REPLAY_GIVES_UP_WITHIN_S = 120.0
STOPPED_LINE = re.compile(
    r"^radio-engine replay: the broker at \S+ stopped acknowledging \(\w+(: .*)?\); "
    r"(?P<acknowledged>\d+) of (?P<total>\d+) events are on \S+, the rest were not sent or not "
    r"acknowledged$"
)


def test_a_replay_whose_broker_dies_exits_2_with_one_line_saying_how_far_it_got(
    slice_events: list[dict[str, Any]], tmp_path: Path
) -> None:
    with broker_for(Settings.from_env(), isolated=True) as broker:
        events_csv = tmp_path / "events.csv"
        _write_events(events_csv, slice_events)
        replay = start_command(
            broker.settings, tmp_path, "replay", "replay", str(events_csv), "--rate", "20"
        )
        try:
            time.sleep(4.0)  # replay sends for a while
            assert replay.poll() is None, (tmp_path / "replay.err").read_text()
            broker.crash()
            crashed = time.monotonic()
            code = replay.wait(timeout=REPLAY_GIVES_UP_WITHIN_S)
            gave_up_after = time.monotonic() - crashed
        finally:
            if replay.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(replay.pid, signal.SIGKILL)
    err = (tmp_path / "replay.err").read_text()
    print(f"replay gave up {gave_up_after:.0f} s after the broker died: {err.strip()[-300:]}")
    assert code == 2, err
    assert "Traceback" not in err, err
    stopped = [m for m in map(STOPPED_LINE.match, err.splitlines()) if m]
    assert len(stopped) == 1, err
    acknowledged, total = int(stopped[0]["acknowledged"]), int(stopped[0]["total"])
    # 4 s at 20 events/s went out before the crash: some, not all, were acknowledged
    assert 0 < acknowledged < total == len(slice_events), err


def _listen_json(event: dict[str, Any], n: int) -> bytes:
    import orjson

    return orjson.dumps({**event, "event_id": f"lifecycle-{n}"})


def _lines(path: Path) -> list[str]:
    return path.read_text(errors="replace").splitlines() if path.exists() else []


def _write_events(path: Path, events: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["user_id", "track_id", "artist_id", "ts"])
        for e in events:
            writer.writerow([e["listener_id"], e["track_id"], e.get("artist_id", ""), e["ts"]])


# -- the demo ------------------------------------------------------------------------------------

#: a short demo: it is stopped long before these run out
DEMO_ARGS = ("--events", "300", "--duration", "120")


def processes_naming(marker: str) -> list[int]:
    """Live processes whose command line or environment holds `marker` (zombies are gone)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if (entry / "stat").read_text().split(") ", 1)[1].startswith("Z"):
                continue
            text = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:  # ended meanwhile, or not ours to read
            continue
        if marker.encode() in text:
            found.append(int(entry.name))
    return found


@pytest.fixture
def demo_home(tmp_path: Path) -> Iterator[Path]:
    """A RADIO_HOME of its own (the Kafka jars linked from the shared cache)."""
    home = tmp_path / "home"
    home.mkdir()
    shared = Settings.from_env()
    jars = f"kafka-{shared.kafka_version}"
    (home / jars).symlink_to(shared.home_path / jars)
    yield home
    for pid in processes_naming(str(home)):  # never leave one behind, even when failing
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("moment", ["while its broker starts", "while it runs"])
def test_sigterm_to_the_demo_leaves_no_process_it_started(
    demo_home: Path, slice_model: Path, tmp_path: Path, moment: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADIO_")}
    env.update(
        RADIO_HOME=str(demo_home),
        RADIO_BROKER=f"127.0.0.1:{free_port()}",
        RADIO_BROKER_CONTROLLER_PORT=str(free_port()),
        RADIO_WORKER_PORT=str(free_port()),
    )
    log = tmp_path / "demo.out"
    demo = subprocess.Popen(
        [sys.executable, "-m", "radio_engine.cli", "demo", *DEMO_ARGS, "--model", str(slice_model)],
        env=env,
        stdout=open(log, "wb"),  # noqa: SIM115 - the child holds it
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        if moment == "while it runs":
            wait_for(lambda: "==> worker up" in log.read_text(), "the demo's worker", 180)
            assert len(processes_naming(str(demo_home))) >= 2  # the broker, the worker
        else:  # launched, not ready yet: the broker takes seconds to start
            wait_for(lambda: any(demo_home.glob("broker-*/broker.pid")), "the broker's launch")
            assert "==> Kafka broker" not in log.read_text()
        demo.send_signal(signal.SIGTERM)
        code = demo.wait(120)
    finally:
        if demo.poll() is None:
            demo.kill()
    out = log.read_text()
    assert processes_naming(str(demo_home)) == [], out[-3000:]
    if moment == "while it runs":  # the demo stops its worker and broker, then sums up
        assert code == 0, out[-3000:]
        assert "==> stopping (SIGTERM)" in out and "==> demo summary" in out
    else:
        assert code == 128 + signal.SIGTERM, out[-3000:]
