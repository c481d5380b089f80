"""Hostile input, measured: generated malformed and odd messages at one worker on a real broker.

    python benchmarks/fuzz_input.py [--messages 10000] [--seed 1] [--audio-share 0.3] [--json OUT]

Starts a scratch Kafka broker and one `radio-engine worker` (an untrained model over the first
3,000 30Music tracks, audio limits 64 KiB per chunk and 30 s per track so that oversize input
fits under the broker's limit), sends the messages of tests/fuzz_messages.py (a quarter first as
a warm-up, then the rest) and checks them with tests/fuzz_run.py. Prints messages by mutation
kind and verdict, dead letters by reason, mismatches, crashes and the worker's RSS.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from radio_engine.broker.config import MESSAGE_MAX_BYTES  # noqa: E402
from radio_engine.broker.launcher import free_port, running_broker  # noqa: E402
from radio_engine.settings import Settings  # noqa: E402
from radio_engine.worker.process import start_worker  # noqa: E402
from tests.fuzz_messages import ACCEPTED, Limits, generate  # noqa: E402
from tests.fuzz_run import run_fuzz  # noqa: E402

LIMITS = Limits(
    max_chunk_bytes=64 * 1024, max_track_seconds=30.0, max_message_bytes=MESSAGE_MAX_BYTES - 16384
)


def model_dir(base: Settings, tmp: Path) -> Path:
    """An untrained model exported over the first 3,000 tracks of the 30Music events."""
    from radio_engine.training.export import export_random_model

    tracks: dict[str, str] = {}
    with open(base.data_path / "30music" / "events.csv", newline="") as f:
        for row in csv.DictReader(f):
            tracks.setdefault(row["track_id"], row["artist_id"])
            if len(tracks) >= 3000:
                break
    return export_random_model(tmp / "model", list(tracks), list(tracks.values()))


def print_tables(messages: list, report: dict, args: argparse.Namespace) -> None:
    """The figures as Markdown tables, with the machine and the settings."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    print(f"\nmachine: {platform.platform()}, {cpu}, {os.cpu_count()} cores")
    print(f"load (1, 5, 15 min) at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"settings: {args.messages} messages, seed {args.seed}, audio share {args.audio_share}, "
        f"chunk limit {LIMITS.max_chunk_bytes} B, track limit {LIMITS.max_track_seconds:g} s, "
        f"largest message {LIMITS.max_message_bytes} B"
    )
    kinds: Counter[tuple[str, str]] = Counter()
    verdicts: dict[tuple[str, str], Counter[str]] = {}
    for m in messages:
        kinds[(m.topic, m.kind)] += 1
        verdicts.setdefault((m.topic, m.kind), Counter())[m.verdict] += 1
    print("\n| topic | mutation | messages | verdicts (expected) |\n| --- | --- | --- | --- |")
    for (topic, kind), n in sorted(kinds.items()):
        v = ", ".join(f"{r} {c}" for r, c in verdicts[(topic, kind)].most_common())
        print(f"| {topic} | {kind} | {n:,} | {v} |")
    refused = sum(m.verdict != ACCEPTED for m in messages)
    print(
        f"\nmessages: {len(messages):,}; due to be accepted {len(messages) - refused:,}, "
        f"refused {refused:,}; {sum(m.size for m in messages) / 2**20:.1f} MiB in all"
    )
    print("\n| dead letters on the topic (source/reason) | count |\n| --- | --- |")
    for name, n in report["dead_letters"].items():
        print(f"| {name} | {n:,} |")
    rss = report["rss_kib"]
    print(
        f"\nmismatches: {report['mismatches']}; counter problems: {len(report['problems'])}; "
        f"crashed: {report['crashed']}"
    )
    for line in report["mismatch_examples"] + report["problems"]:
        print(f"  {line}")
    print(
        "worker RSS: "
        + ", ".join(f"{k} {v / 1024:.1f} MiB" for k, v in rss.items())
        + (
            f"; growth after warm-up {(rss['after_rest'] - rss['after_warmup']) / 1024:+.1f} MiB"
            if "after_rest" in rss
            else ""
        )
    )
    print("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in report["seconds"].items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--audio-share", type=float, default=0.3)
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    started = time.monotonic()
    messages = generate(args.messages, args.seed, LIMITS, audio_share=args.audio_share)
    print(f"generated {len(messages):,} messages in {time.monotonic() - started:.1f} s", flush=True)
    base = Settings.from_env()
    with tempfile.TemporaryDirectory() as tmp_name, running_broker(base, isolated=True) as broker:
        tmp = Path(tmp_name)
        app_id = f"fuzz-{time.time_ns() % 10**6}"
        settings = broker.for_app(
            app_id,
            model_dir=str(model_dir(base, tmp)),
            worker_port=free_port(),
            worker_data_dir=str(tmp / "data"),
            audio_max_chunk_bytes=LIMITS.max_chunk_bytes,
            audio_max_track_seconds=LIMITS.max_track_seconds,
        )
        worker = start_worker(settings, tmp / "worker.log")
        print(f"broker at {settings.broker}; worker pid {worker.proc.pid}; sending", flush=True)
        try:
            report = run_fuzz(worker, messages, timeout=600).as_dict()
        finally:
            worker.stop()
    print_tables(messages, report, args)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if not (report["mismatches"] or report["problems"] or report["crashed"]) else 1


if __name__ == "__main__":
    sys.exit(main())
