"""A broker outage, measured: what a worker, `tail` and `replay` write while their broker is
gone, and how long each takes to stop on SIGTERM then.

    python benchmarks/broker_outage.py [--outage 30] [--json OUT.json]

One real broker (its own ports and data), one worker (an untrained model over 200 tracks), one
listener with a queue, `radio-engine tail` following it and `radio-engine replay` sending 10
events a second. The broker is SIGKILLed; after --outage seconds each process gets SIGTERM.
Counted over the outage: ERROR lines in the worker's log, lines on tail's stderr (its Kafka
client's errors), and tail's stdout lines that are not part of a queue. Timed: SIGTERM to exit, per process (a process
still running after 90 s is SIGKILLed and reported so). Not a test: nothing here asserts.
Run it with PYTHONPATH pointing at another checkout to measure that code instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from radio_engine.broker.launcher import broker_for, free_port
from radio_engine.player.replay import replay_events
from radio_engine.settings import Settings
from radio_engine.worker.process import start_command, start_worker

STOP_LIMIT_S = 90.0
QUEUE_LINE = re.compile(r"^(\S+ v\d+ at .*tracks\)| +\d+\. .*)$")


def count_lines(path: Path, word: str = "") -> int:
    """Lines of a file that hold `word` (every line when empty; 0 if there is no file)."""
    if not path.exists():
        return 0
    return sum(word in line for line in path.read_text(errors="replace").splitlines())


def stop_times(procs: dict[str, subprocess.Popen[Any]]) -> dict[str, dict[str, Any]]:
    """SIGTERM each at once; seconds to exit and the exit code (SIGKILLed after STOP_LIMIT_S)."""
    began = time.monotonic()
    for proc in procs.values():
        proc.send_signal(signal.SIGTERM)
    result: dict[str, dict[str, Any]] = {}
    while len(result) < len(procs):
        waited = time.monotonic() - began
        for name, proc in procs.items():
            if name in result:
                continue
            if proc.poll() is not None:
                result[name] = {"seconds": round(waited, 1), "exit_code": proc.returncode}
            elif waited > STOP_LIMIT_S:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                result[name] = {"seconds": None, "exit_code": "SIGKILLed after 90 s"}
        time.sleep(0.05)
    return result


def measure(outage_s: float, out: Path) -> dict[str, Any]:
    """The run described in the module docstring; its figures."""
    from radio_engine.training.export import export_random_model

    tracks = [str(i) for i in range(200)]
    model = export_random_model(out / "model", tracks, [str(i % 20) for i in range(200)])
    with broker_for(Settings.from_env(), isolated=True) as broker:
        settings = broker.settings.with_overrides(topic_partitions=4).for_app(
            "outage",
            model_dir=str(model),
            worker_port=free_port(),
            worker_data_dir=str(out / "data"),
        )
        worker = start_worker(settings, out / "worker.log")
        procs: dict[str, subprocess.Popen[Any]] = {"worker": worker.proc}
        try:
            events = [
                {"listener_id": "fan", "track_id": t, "event": "play", "ts": 1.4e9 + i}
                for i, t in enumerate(tracks[:3])
            ]
            asyncio.run(replay_events(settings, events, progress=False))
            procs["tail"] = start_command(settings, out, "tail", "tail", "--listener", "fan")
            deadline = time.monotonic() + 90
            while not (out / "tail.out").read_bytes() and time.monotonic() < deadline:
                time.sleep(0.3)
            with open(out / "events.csv", "w", newline="") as f:
                rows = csv.writer(f)
                rows.writerow(["user_id", "track_id", "ts"])
                rows.writerows([f"l{i % 50}", tracks[i % 200], 1.5e9 + i] for i in range(5000))
            procs["replay"] = start_command(
                settings, out, "replay", "replay", str(out / "events.csv"), "--rate", "10"
            )
            time.sleep(5.0)
            before = {
                "worker": count_lines(worker.log, "ERROR"),
                "tail": count_lines(out / "tail.err"),
            }
            broker.crash()
            time.sleep(outage_s)
            during = {
                "worker_error_lines": count_lines(worker.log, "ERROR") - before["worker"],
                "tail_stderr_lines": count_lines(out / "tail.err") - before["tail"],
            }
            tail_out = (out / "tail.out").read_text(errors="replace").splitlines()
            during["tail_stdout_lines"] = len(tail_out)
            during["tail_stdout_not_queue"] = sum(not QUEUE_LINE.match(x) for x in tail_out)
            stops = stop_times(procs)
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
    return {"outage_s": outage_s, **during, "stop_on_sigterm": stops}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage", type=float, default=30.0, help="seconds the broker is gone")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="radio-outage-") as tmp:
        figures = measure(args.outage, Path(tmp))
    print(f"broker gone for {figures['outage_s']:.0f} s")
    print("| figure | value |\n| --- | --- |")
    for key in ("worker_error_lines", "tail_stderr_lines", "tail_stdout_not_queue"):
        print(f"| {key.replace('_', ' ')} | {figures[key]} |")
    for name, stop in figures["stop_on_sigterm"].items():
        print(f"| {name}: SIGTERM to exit | {stop['seconds']} s, exit code {stop['exit_code']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
