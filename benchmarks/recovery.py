"""Recovery after a crash, measured against one real Kafka broker: how long a worker takes to
serve again against how much listener state its changelog holds.

    python benchmarks/recovery.py [--sizes 1000,10000,100000] [--versions 1,10]
                                  [--max-records 200000] [--takeover-listeners 10000]
                                  [--skip-takeover] [--model DIR] [--json OUT.json]

For every size N and every K in --versions (N*K at most --max-records), on fresh topics:
  1. N realistic listener states (recovery_bench.StateMaker, ~1.1-1.3 KiB) are written K times
     each straight onto the table's changelog (created as the worker creates it: compact, 8
     partitions, worker/app.py's CHANGELOG_CONFIGS); K=1 is a compacted changelog, K>1 one the
     cleaner has not reached yet;
  2. cold start: one worker starts on it and is timed to ready;
  3. crash: that worker is SIGKILLed, one listen event per partition is sent for its last
     listener, and a fresh worker (empty data dir) starts at once, under the same
     RADIO_WORKER_NAME (a static group member). Timed from its process start: up (/health
     answers: imports, model, catalog, Faust), assigned (the group joined: a static member is
     handed its partitions back at once), every listener held (the changelog read in bulk and
     the table rebuilt, from /health's listeners_held), ready (/health?ready=1), and every
     sample listener answering with the event applied;
  4. floors on the same changelog: one plain aiokafka consumer reading it all, and Faust's
     memory store applying the same records without Kafka.
The largest size runs once more as a dynamic member (no RADIO_WORKER_NAME): after a SIGKILL the
broker first waits out the dead member's session before the restarted worker joins.
Takeover: two workers share --takeover-listeners listeners, one is SIGKILLed, and the survivor
is timed until it answers every sample listener (the dead one's too) with an event applied;
with RADIO_TABLE_STANDBY_REPLICAS 0 and 1.
The worker is reached only through its process interface (RADIO_* variables, HTTP, topics).
Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# BLAS and OpenMP to one thread before numpy loads, here and (through the env) in every child
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

BENCHMARKS = Path(__file__).resolve().parent
for _path in (BENCHMARKS.parent, BENCHMARKS):  # the repo root, then benchmarks/
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import recovery_bench as rb  # noqa: E402
from listen_bench.common import PARTITIONS  # noqa: E402
from listen_bench.context import (  # noqa: E402
    describe_machine,
    load_text,
    resolve_model,
)
from listen_bench.markdown import num, table  # noqa: E402
from listen_bench.summary import finite  # noqa: E402
from listen_bench.workers import worker_settings  # noqa: E402

from radio_engine.broker.launcher import free_port, running_broker  # noqa: E402
from radio_engine.model.runtime import ServingModel  # noqa: E402
from radio_engine.settings import Settings  # noqa: E402

#: RADIO_WORKER_NAME of the restarted worker: the same name makes it the same static member
WORKER_NAME = "bench"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    ints = lambda text: [int(x) for x in text.split(",") if x]  # noqa: E731
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=ints, default=[1000, 10000, 100000], help="listeners")
    parser.add_argument("--versions", type=ints, default=[1, 10], help="records per listener")
    parser.add_argument(
        "--max-records", type=int, default=200_000, help="skip cases with more changelog records"
    )
    parser.add_argument("--takeover-listeners", type=int, default=10000)
    parser.add_argument("--skip-takeover", action="store_true", help="no two-worker runs")
    parser.add_argument("--model", help="model directory (default: trained, else untrained)")
    parser.add_argument("--json", type=Path, help="write the results as one JSON object here")
    return parser.parse_args(argv)


def describe(base: Settings, model: ServingModel, source: str) -> dict[str, Any]:
    """What the figures depend on: machine, load, broker, settings, model."""
    return {
        **describe_machine(base),
        "model": {"source": source, "version": model.version, "hidden": model.dims.hidden},
    }


def print_header(info: dict[str, Any]) -> None:
    """The context lines above the tables."""
    m = info["machine"]
    print(f"machine: {m['platform']}, {m['cpu']}, {m['cores']} cores, Python {m['python']}")
    print(f"load at start (1, 5, 15 min): {load_text(info['load_start'])}")
    print(f"broker: {info['broker']}, KRaft, single node, loopback; {PARTITIONS} partitions")
    print("settings: " + ", ".join(f"{k}={v}" for k, v in info["settings"].items()))
    md = info["model"]
    print(f"model: {md['source']}, version {md['version']}, hidden {md['hidden']}\n", flush=True)


def run_phase(results: dict[str, Any], errors: list[str], name: str, fn: Callable[[], Any]) -> None:
    """Run one measurement; a failure is recorded and the others go on."""
    print(f"-- {name}", flush=True)
    started = time.monotonic()
    try:
        results[name] = fn()
    except Exception as exc:  # one failed case must not lose the others' figures
        errors.append(f"{name}: {exc!r}")
        print(f"   FAILED: {exc!r}", flush=True)
    print(f"   {time.monotonic() - started:.0f} s", flush=True)


def restart_case(
    settings: Settings, maker: rb.StateMaker, n: int, k: int, tmp: Path, track: str
) -> dict[str, Any]:
    """One size: cold start and restart after a SIGKILL, then the read and rebuild floors."""
    app_id = f"rec-{n}-{k}-{time.time_ns()}"
    (tmp / app_id).mkdir(parents=True)
    own = worker_settings(settings, Path(settings.model_dir), app_id, tmp / app_id)
    own = own.with_overrides(worker_port=free_port())
    result = rb.restart_after_kill(own, maker, n, k, tmp / app_id, track)
    result["plain_read"] = asyncio.run(rb.plain_read(own))
    result["store_apply"] = rb.store_apply(maker, n, k, PARTITIONS)
    shutil.rmtree(tmp / app_id, ignore_errors=True)
    return result


def takeover_case(
    settings: Settings, maker: rb.StateMaker, n: int, standbys: int, tmp: Path, track: str
) -> dict[str, Any]:
    """Two workers, one SIGKILLed, with this many standby replicas."""
    app_id = f"take-{standbys}-{time.time_ns()}"
    (tmp / app_id).mkdir(parents=True)
    own = worker_settings(settings, Path(settings.model_dir), app_id, tmp / app_id)
    own = own.with_overrides(table_standby_replicas=standbys)
    result = rb.takeover(own, maker, n, tmp / app_id, track)
    shutil.rmtree(tmp / app_id, ignore_errors=True)
    return result


def s(x: Any) -> str:
    """Seconds for a cell."""
    return num(x, ".1f")


def print_tables(results: dict[str, Any]) -> None:
    """The restart table, where the time goes, the takeover table."""
    rows, floors = [], []
    for name, r in results.items():
        if not name.startswith("restart"):
            continue
        c, t = r["cold"], r["restart"]
        label = f"{r['listeners']:,} x {r['versions']}"
        if r.get("membership") == "dynamic":
            label += " (dynamic member)"
        rows.append(
            [
                label,
                f"{r['records']:,}",
                num(r["bytes"] / 1e6, ".0f"),
                s(c["ready"]),
                s(t["up"]),
                s(t["assigned"]),
                s(t["held_all"]),
                s(t["ready"]),
                s(t["applied"]),
            ]
        )
        read = t["ready"] - t["assigned"]  # recovery reads every record before ready
        on_log = r["plain_read"]["records"]
        floors.append(
            [
                label,
                f"{on_log:,}",
                s(t["up"]),
                s(t["assigned"] - t["up"]),
                f"{s(read)} ({num(1e6 * read / on_log, ',.0f')} us/record)",
                f"{s(r['plain_read']['seconds'])} "
                f"({num(1e6 * r['plain_read']['seconds'] / on_log, ',.0f')} us/record)",
                f"{num(1e3 * r['store_apply']['seconds'], ',.0f')} ms",
            ]
        )
    head = ["listeners x records each", "records", "MB", "cold start: ready"]
    head += ["restart: up", "assigned", "all held", "ready", "lookups + event applied"]
    table(
        "Recovery: seconds from the worker's process start (restart: right after a SIGKILL)",
        head,
        rows,
    )
    table(
        "Where the restart's time goes (seconds)",
        [
            "case",
            "records on the changelog after the restart",
            "process start",
            "group join",
            "assigned to ready: changelog read + rebuild (worker)",
            "plain aiokafka read of the same changelog",
            "memory-store apply alone",
        ],
        floors,
    )
    take = []
    for name, r in results.items():
        if not name.startswith("takeover"):
            continue
        t = r["survivor"]
        take.append(
            [
                str(r["standby_replicas"]),
                " / ".join(f"{h:,}" for h in r["held_before"]),
                s(t["assigned"]),
                s(t["held_all"]),
                s(t["ready"]),
                s(t["lookup"]),
            ]
        )
    if take:
        first = next(r for name, r in results.items() if name.startswith("takeover"))
        table(
            f"Takeover: seconds from the SIGKILL of one of two workers ({first['listeners']:,} "
            f"listeners, session timeout {first['session_timeout_s']:g} s)",
            [
                "standby replicas",
                "listeners held before (survivor / killed)",
                "survivor assigned",
                "holds all",
                "ready",
                "every listener answers, event applied",
            ],
            take,
        )


def main(argv: list[str] | None = None) -> int:
    """Every case, the tables, the JSON; exit 1 if a case failed."""
    args = parse_args(argv)
    base = Settings.from_env()
    tmp = Path(tempfile.mkdtemp(prefix="radio-recovery-"))
    model_dir, source = resolve_model(args.model, base, base.data_path, tmp)
    model = ServingModel(model_dir, threads=1)
    info = describe(base, model, source)
    print_header(info)
    track = str(model.tracks.track_ids[0])
    results: dict[str, Any] = {}
    errors: list[str] = []

    def phase(name: str, fn: Callable[[], Any]) -> None:
        """One case, then the JSON so far (a long run interrupted keeps what it measured)."""
        run_phase(results, errors, name, fn)
        if args.json:
            blob = {"info": info, "results": results, "errors": errors}
            args.json.write_text(json.dumps(finite(blob), indent=2, default=str, allow_nan=False))

    with running_broker(base, isolated=True) as settings:
        settings = settings.with_overrides(model_dir=str(model_dir), topic_partitions=PARTITIONS)
        maker = rb.StateMaker(model, settings)
        static = settings.with_overrides(worker_name=WORKER_NAME)
        for n in args.sizes:
            for k in args.versions:
                if n * k > args.max_records:
                    print(f"-- {n:,} x {k}: skipped (over --max-records)")
                    continue
                phase(
                    f"restart-{n}x{k}",
                    lambda n=n, k=k: (
                        restart_case(static, maker, n, k, tmp, track) | {"membership": "static"}
                    ),
                )
        big = max(args.sizes)
        phase(
            f"restart-{big}x1-dynamic",
            lambda: restart_case(settings, maker, big, 1, tmp, track) | {"membership": "dynamic"},
        )
        if not args.skip_takeover:
            for sb in (0, 1):
                phase(
                    f"takeover-standby{sb}",
                    lambda sb=sb: takeover_case(
                        settings, maker, args.takeover_listeners, sb, tmp, track
                    ),
                )
    print()
    print_tables(results)
    for error in errors:
        print(f"FAILED {error}")
    if args.json:
        print(f"wrote {args.json}")
    shutil.rmtree(tmp, ignore_errors=True)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
