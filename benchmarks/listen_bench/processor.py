"""Phase 7, no Kafka: the listen processor alone, built and fed the way the worker does it."""

from __future__ import annotations

import gc
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from threadpoolctl import threadpool_limits

from listen_bench.common import PARTITIONS
from radio_engine.engine import Engine
from radio_engine.listens.decode import InMessage
from radio_engine.listens.pipeline import BatchOutcome
from radio_engine.settings import Settings

PROCESSOR_EVENTS = 20_000  # real 30Music events fed to the processor
PROCESSOR_WARMUP = 4_000  # the first of them: processed, not measured
PROCESSOR_BATCHES = (512, 1024)
STAGES = ("decode", "load_state", "gru", "selector", "encode", "total")


def to_records(events: list[dict[str, Any]]) -> list[InMessage]:
    """Events as consumed records: keyed by listener, a stable partition per key, offset = index."""
    records = []
    for i, event in enumerate(events):
        key = event["listener_id"].encode()
        partition = zlib.crc32(key) % PARTITIONS
        records.append(InMessage(key, orjson.dumps(event), partition, i, time.time()))
    return records


@dataclass
class Tally:
    """What the measured batches of one batch size cost and did."""

    batches: int = 0
    events: int = 0
    cpu_s: float = 0.0
    wall_s: float = 0.0
    stage_s: Counter[str] = field(default_factory=Counter)
    listeners: int = 0
    rescored: int = 0
    first_pools: int = 0
    unknown_tracks: int = 0
    dead_letters: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    refine_cpu_s: float = 0.0
    refined: int = 0

    def add(self, batch: list[InMessage], out: BatchOutcome, cpu_s: float, wall_s: float) -> None:
        """Count one processed batch."""
        self.batches += 1
        self.events += len(batch)
        self.cpu_s += cpu_s
        self.wall_s += wall_s
        self.stage_s.update(out.seconds)
        self.listeners += len({r.key for r in batch})
        self.rescored += out.rescored
        self.first_pools += out.first_pools
        self.unknown_tracks += out.unknown_tracks
        self.dead_letters += len(out.dead_letters)
        self.counts.update({f"{kind}/{outcome}": n for (kind, outcome), n in out.counts.items()})


def run_batches(
    engine: Engine,
    records: list[InMessage],
    size: int,
    store: dict[bytes, bytes],
    tally: Tally | None = None,
) -> None:
    """Process `records` in batches of `size` against `store`, writing states back as the worker
    does, with one refine tick (the worker's off-path rescores of new listeners) after each
    batch; the process call and the tick are timed apart (into `tally`, when one is given)."""
    per_tick = engine.listens.settings.refine_per_tick
    for start in range(0, len(records), size):
        batch = records[start : start + size]
        cpu0, wall0 = time.process_time(), time.perf_counter()
        out = engine.listens.process(batch, store.get)
        cpu1, wall1 = time.process_time(), time.perf_counter()
        for key, (_partition, value) in out.states.items():
            store[key] = value
        refined = engine.selector.refine(per_tick)
        cpu2 = time.process_time()
        if tally is not None:
            tally.add(batch, out, cpu1 - cpu0, wall1 - wall0)
            tally.refine_cpu_s += cpu2 - cpu1
            tally.refined += refined


def load_engine(settings: Settings) -> tuple[Engine, float]:
    """Engine.load(settings) as the worker calls it, then the collector frozen as it does;
    returns the engine and the seconds the load took."""
    started = time.perf_counter()
    engine = Engine.load(settings)
    took = time.perf_counter() - started
    gc.collect()
    gc.freeze()
    return engine, took


def processor_row(settings: Settings, records: list[InMessage], size: int) -> dict[str, Any]:
    """A fresh engine and an empty store: warm up on the first events, measure the rest."""
    with threadpool_limits(limits=settings.worker_threads):
        engine, load_s = load_engine(settings)
        try:
            store: dict[bytes, bytes] = {}
            warm = min(PROCESSOR_WARMUP, len(records) // 5)
            run_batches(engine, records[:warm], size, store)
            tally = Tally()
            run_batches(engine, records[warm:], size, store, tally)
        finally:
            gc.unfreeze()
    return row_of(tally, size, warm, len(store), load_s)


def row_of(t: Tally, size: int, warm: int, listeners: int, load_s: float) -> dict[str, Any]:
    """One table row of per-event and per-batch figures from a tally."""
    n, b = max(t.events, 1), max(t.batches, 1)
    return {
        "batch": size,
        "warmup_events": warm,
        "events": t.events,
        "batches": t.batches,
        "cpu_us_per_event": t.cpu_s / n * 1e6,
        "refine_cpu_us_per_event": t.refine_cpu_s / n * 1e6,
        "cpu_with_refine_us_per_event": (t.cpu_s + t.refine_cpu_s) / n * 1e6,
        "refined_per_batch": t.refined / b,
        "wall_us_per_event": t.wall_s / n * 1e6,
        "stage_us_per_event": {s: t.stage_s.get(s, 0.0) / n * 1e6 for s in STAGES},
        "listeners_per_batch": t.listeners / b,
        "rescores_per_batch": t.rescored / b,
        "first_pools_per_batch": t.first_pools / b,
        "outcomes": dict(sorted(t.counts.items())),
        "dead_letters": t.dead_letters,
        "unknown_tracks": t.unknown_tracks,
        "listeners_stored": listeners,
        "engine_load_s": load_s,
    }


def processor_table(
    base: Settings, model_dir: Path, events: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The processor alone over real events, at each batch size in PROCESSOR_BATCHES."""
    settings = base.with_overrides(model_dir=str(model_dir))
    records = to_records(events[:PROCESSOR_EVENTS])
    rows = []
    for size in PROCESSOR_BATCHES:
        rows.append(processor_row(settings, records, size))
        r = rows[-1]
        print(
            f"  batch {size}: {r['cpu_us_per_event']:.1f} CPU us/event "
            f"(+{r['refine_cpu_us_per_event']:.1f} refine), "
            f"{r['wall_us_per_event']:.1f} wall us/event over {r['events']:,} events",
            flush=True,
        )
    return rows
