"""A worker (or demo) that cannot start says why in one line, before Faust's retries begin."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from radio_engine.broker.launcher import free_port
from radio_engine.settings import Settings
from radio_engine.worker.main import preflight


@pytest.fixture
def listening() -> Iterator[int]:
    """A port something listens on (a stand-in broker, or a worker already there)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_preflight_names_the_missing_broker_and_the_taken_port(listening: int) -> None:
    nobody = free_port()
    missing = preflight(Settings(broker=f"127.0.0.1:{nobody}", worker_port=free_port()))
    assert missing and f"cannot reach a Kafka broker at 127.0.0.1:{nobody}" in missing
    assert "radio-engine broker start" in missing
    taken = Settings(broker=f"127.0.0.1:{listening}", worker_port=listening)
    assert preflight(taken) == (
        f"port {listening} is in use (another worker?); pick a free one with --port / "
        "RADIO_WORKER_PORT"
    )
    assert preflight(Settings(broker=f"127.0.0.1:{listening}", worker_port=free_port())) is None


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "radio_engine.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_worker_without_a_broker_is_one_line_and_exit_2() -> None:
    done = run_cli("worker", "--broker", f"127.0.0.1:{free_port()}", "--port", str(free_port()))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach a Kafka broker" in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_the_demo_refuses_a_worker_port_in_use(listening: int) -> None:
    done = run_cli("demo", RADIO_WORKER_PORT=str(listening))
    assert done.returncode != 0
    assert f"the worker port {listening} is in use" in done.stderr
    assert "Traceback" not in done.stderr
