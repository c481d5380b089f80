"""A `radio-engine worker` as a child process: start it with given settings, reach its HTTP
pages, stop it gracefully or kill it. Used by the crash verifier and the integration tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radio_engine.settings import Settings


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process exactly these settings (RADIO_* replaced;
    secrets revealed, as the child needs them)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADIO_")}
    for env_name, _, _, _ in Settings.describe():
        env[env_name] = settings.env_value(env_name.removeprefix("RADIO_").lower())
    return env


def start_command(settings: Settings, out: Path, name: str, *argv: str) -> subprocess.Popen[bytes]:
    """`radio-engine ARGV` as a child in its own session with these settings; its stdout and
    stderr go to OUT/NAME.out and OUT/NAME.err (for tests and benchmarks that signal it)."""
    with open(out / f"{name}.out", "wb") as out_file, open(out / f"{name}.err", "wb") as err:
        return subprocess.Popen(  # the child keeps its own copies of the files
            [sys.executable, "-m", "radio_engine.cli", *argv],
            env=settings_env(settings),
            stdout=out_file,
            stderr=err,
            start_new_session=True,
        )


@dataclass
class WorkerProcess:
    """A worker child process and how to reach it."""

    proc: subprocess.Popen[bytes]
    settings: Settings
    log: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.settings.worker_port}{path}"

    def get(self, path: str, timeout: float = 5, headers: dict[str, str] | None = None) -> bytes:
        """GET a page of the worker; raises urllib's HTTPError on a 4xx/5xx answer."""
        request = urllib.request.Request(self.url(path), headers=headers or {})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()

    def get_json(self, path: str, headers: dict[str, str] | None = None) -> Any:
        return json.loads(self.get(path, headers=headers))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM (Faust leaves the group and flushes), SIGKILL if it does not end in time."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """SIGKILL the worker's whole process group: a crash, nothing flushed."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def start_worker(settings: Settings, log: Path, timeout: float = 90) -> WorkerProcess:
    """Start a worker with these settings and wait until /health answers."""
    handle = open(log, "ab")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "radio_engine.cli", "worker"],
        env=settings_env(settings),
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    handle.close()  # the child holds its own copy
    worker = WorkerProcess(proc, settings, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            worker.get("/health")
            return worker
        time.sleep(0.5)
    worker.stop()
    raise TimeoutError(f"worker did not come up:\n{log.read_text()[-3000:]}")
