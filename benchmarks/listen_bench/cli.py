"""The command: arguments, the phases in order, the tables, the JSON file, the exit code."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from listen_bench.broker_run import broker_phases
from listen_bench.context import describe_run, header, load_text, resolve_model
from listen_bench.offline import AUDIO_CLIPS, audio_rtf, gru_table, pick_clips
from listen_bench.processor import PROCESSOR_EVENTS, processor_table
from listen_bench.report import print_tables
from listen_bench.rescore import rescore_table
from listen_bench.runner import Run
from listen_bench.summary import finite, summary
from radio_engine.model.runtime import ServingModel
from radio_engine.player.replay import read_events
from radio_engine.settings import Settings


def parse_args(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see listen_path.py's docstring)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--events", type=int, default=20000, help="backlog size (30Music events)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the latency run")
    parser.add_argument("--model", help="model directory (default: trained, else untrained export)")
    parser.add_argument("--json", type=Path, help="write the results as one JSON object here")
    parser.add_argument("--skip-two-workers", action="store_true", help="skip the 2-worker run")
    parser.add_argument(
        "--skip-broker",
        action="store_true",
        help="run only the offline phases (processor, rescore, GRU, audio): no Kafka",
    )
    parser.add_argument(
        "--skip-offline",
        action="store_true",
        help="run only the broker phases (engine, latency, state, faust, aiokafka, two workers)",
    )
    args = parser.parse_args(argv)
    if args.skip_broker and args.skip_offline:
        parser.error("--skip-broker and --skip-offline together leave nothing to run")
    return args


def offline_phases(
    run: Run, base: Settings, model_dir: Path, model: ServingModel, events: list[dict[str, Any]]
) -> None:
    """The phases without Kafka: processor alone, full-catalog rescore, GRU, audio."""
    run.phase("processor", lambda: processor_table(base, model_dir, events))
    run.phase("rescore", rescore_table)
    run.phase("gru", lambda: gru_table(model))
    run.phase("audio", lambda: audio_rtf(model, pick_clips(base.data_path, AUDIO_CLIPS)))


def write_json(path: Path, run: Run, info: dict[str, Any]) -> None:
    """The summary, every table and the errors as one JSON object (NaN written as null)."""
    blob = {**summary(run.results, info), "errors": run.errors}
    path.write_text(json.dumps(finite(blob), indent=2, default=str, allow_nan=False))
    print(f"wrote {path}")


def main(description: str = "", argv: list[str] | None = None) -> int:
    """Run every phase, print the tables, write the JSON; exit 1 if a phase failed."""
    args = parse_args(description, argv)
    base = Settings.from_env()
    every = read_events(base.data_path / "30music" / "events.csv")  # read_events sorts, then cuts
    events = every[: args.events]
    tmp = Path(tempfile.mkdtemp(prefix="radio-bench-"))
    model_dir, source = resolve_model(args.model, base, base.data_path, tmp)
    model = ServingModel(model_dir, threads=1)
    info = describe_run(base, model, source, events)
    header(info, broker=not args.skip_broker)
    run = Run()
    if not args.skip_broker:
        broker_phases(run, base, model_dir, events, args, tmp)
    if not args.skip_offline:
        offline_phases(run, base, model_dir, model, every[:PROCESSOR_EVENTS])
    info["load_end"] = list(os.getloadavg())
    print()
    print(
        f"load at start: {load_text(info['load_start'])}; at end: {load_text(info['load_end'])}\n"
    )
    print_tables(run.results, args)
    if args.json:
        write_json(args.json, run, info)
    if run.errors:
        print(f"FAILED phases: {', '.join(run.errors)}; logs kept in {tmp}")
        return 1
    shutil.rmtree(tmp, ignore_errors=True)
    return 0
