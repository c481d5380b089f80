"""End-to-end benchmark through a real Kafka broker: one radio-engine worker against two baselines.

Measured in one run, on the same real 30Music events:
  engine      `radio-engine worker`: decode + validate, GRU step (ONNX), selector, table + changelog,
              queue publish; events/s at saturation, and event->queue latency p50/p99 at a fixed rate
  faust-count a bare Faust agent that only counts (the framework's ceiling)
  aiokafka    a plain aiokafka loop: consume, decode + validate, produce one record per event

Usage: python benchmarks/end_to_end.py [--events 20000] [--rate 500] [--seconds 10] [--model DIR]
Prints a table with the machine and the settings. Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from radio_engine import schemas  # noqa: E402
from radio_engine.broker.launcher import free_port, running_broker  # noqa: E402
from radio_engine.broker.topics import ensure_topics  # noqa: E402
from radio_engine.player.kafka_io import make_consumer, make_producer  # noqa: E402
from radio_engine.player.replay import read_events  # noqa: E402
from radio_engine.settings import Settings  # noqa: E402


async def produce(
    settings: Settings, topic: str, events: list[dict], rate: float | None = None
) -> dict[tuple[int, int], float]:
    """Send events (key = listener); returns (partition, offset) -> send time (wall clock)."""
    producer = make_producer(settings)
    await producer.start()
    sent: dict[tuple[int, int], float] = {}
    futures = []
    start = time.monotonic()
    try:
        for i, event in enumerate(events):
            if rate:
                delay = i / rate - (time.monotonic() - start)
                if delay > 0:
                    await asyncio.sleep(delay)
            now = time.time()
            fut = await producer.send(
                topic, value=orjson.dumps(event), key=event["listener_id"].encode()
            )
            futures.append((fut, now))
        for fut, now in futures:
            meta = await fut
            sent[(meta.partition, meta.offset)] = now
    finally:
        await producer.stop()
    return sent


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def start_engine(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **{
            e: str(getattr(settings, e.removeprefix("RADIO_").lower()))
            for e, *_ in Settings.describe()
        },
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "radio_engine.cli", "worker"],
        env=env,
        stdout=open(log, "wb"),  # noqa: SIM115 - the child owns it
        stderr=subprocess.STDOUT,
    )
    for _ in range(240):
        try:
            metric(settings.worker_port, "radio_listen_events_total")
            return proc
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"worker did not start; see {log}")


async def queue_latencies(
    settings: Settings, sent: dict[tuple[int, int], float], n: int, timeout: float
) -> list[float]:
    """Read the queues topic; latency = queue record time - send time of the event it answers."""
    consumer = make_consumer(settings, settings.topic_queues)
    await consumer.start()
    out: list[float] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < n and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                for r in records:
                    after = orjson.loads(r.value)["after_event"]
                    t0 = sent.get((after["partition"], after["offset"]))
                    if t0 is not None:
                        out.append(r.timestamp / 1000.0 - t0)
    finally:
        await consumer.stop()
    return out


def bench_engine(
    base: Settings, model: Path, events: list[dict], rate: float, seconds: float, tmp: Path
) -> dict:
    settings = base.with_overrides(
        app_id="bench-engine",
        worker_port=free_port(),
        model_dir=str(model),
        worker_data_dir=str(tmp / "engine-data"),
        topic_listens="bench.engine.listens",
        topic_queues="bench.engine.queues",
    )
    proc = start_engine(settings, tmp / "engine.log")
    try:
        asyncio.run(ensure_topics(settings))
        t0 = time.time()
        asyncio.run(produce(settings, settings.topic_listens, events))
        while metric(settings.worker_port, "radio_listen_events_total") < len(events):
            time.sleep(0.05)
        throughput = len(events) / (time.time() - t0)
        paced = events[: int(rate * seconds)]
        paced = [{**e, "listener_id": "lat-" + e["listener_id"]} for e in paced]  # fresh listeners
        sent = asyncio.run(produce(settings, settings.topic_listens, paced, rate=rate))
        lat = asyncio.run(queue_latencies(settings, sent, len(paced) // 2, timeout=seconds + 30))
    finally:
        proc.terminate()
        proc.wait(30)
    p50, p99 = (np.percentile(lat, [50, 99]) * 1000).tolist() if lat else (float("nan"),) * 2
    return {"events_per_s": throughput, "p50_ms": p50, "p99_ms": p99, "latency_samples": len(lat)}


def bench_faust(settings: Settings, events: list[dict], tmp: Path) -> dict:
    topic = "bench.faust.listens"
    asyncio.run(produce(settings, topic, events))
    out = tmp / "faust-result.json"
    env = {
        **os.environ,
        "BENCH_BROKER": settings.broker,
        "BENCH_TOPIC": topic,
        "BENCH_N": str(len(events)),
        "BENCH_APP": f"bench-count-{time.time_ns()}",
        "BENCH_OUT": str(out),
    }
    with open(tmp / "faust.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / "faust_counter.py")],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp,
        )
        try:
            deadline = time.monotonic() + 300
            while not out.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"faust counter did not finish; see {tmp / 'faust.log'}")
                time.sleep(0.2)
            time.sleep(0.1)
            done = json.loads(out.read_text())
            return {"events_per_s": done["events"] / (done["last"] - done["first"])}
        finally:
            proc.terminate()
            proc.wait(30)


async def bench_aiokafka(settings: Settings, events: list[dict]) -> dict:
    topic = "bench.plain.listens"
    await produce(settings, topic, events)
    consumer = make_consumer(
        settings, topic, group_id=f"bench-plain-{time.time_ns()}", max_poll_records=2000
    )
    producer = make_producer(settings)
    await consumer.start()
    await producer.start()
    n, first = 0, 0.0
    try:
        while n < len(events):
            batch = await consumer.getmany(timeout_ms=500, max_records=2000)
            for records in batch.values():
                if not first:
                    first = time.time()
                for r in records:
                    body = schemas.decode("listen", r.value)
                    producer.send(
                        "bench.plain.out", value=r.value, key=body["listener_id"].encode()
                    )
                    n += 1
            await producer.flush() if n >= len(events) else None
    finally:
        await consumer.stop()
        await producer.stop()
    return {"events_per_s": n / (time.time() - first)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--rate", type=float, default=500.0, help="events/s for the latency run")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the latency run")
    parser.add_argument(
        "--model", help="model directory (default: the trained one, else an untrained export)"
    )
    args = parser.parse_args()
    base = Settings.from_env()
    data = base.data_path / "30music" / "events.csv"
    events = read_events(data, limit=args.events)
    model = Path(args.model) if args.model else base.model_path
    tmp = Path(tempfile.mkdtemp(prefix="radio-bench-"))
    if not (model / "manifest.json").exists():
        from radio_engine.training.export import export_random_model

        tracks: dict[str, str] = {}
        for e in read_events(data):
            tracks.setdefault(e["track_id"], e.get("artist_id", ""))
        model = export_random_model(tmp / "model", list(tracks), list(tracks.values()))
    with running_broker(base, isolated=True) as settings:
        settings = settings.with_overrides(topic_partitions=8)
        engine = bench_engine(settings, model, events, args.rate, args.seconds, tmp)
        faust_count = bench_faust(settings, events, tmp)
        plain = asyncio.run(bench_aiokafka(settings, events))
    from radio_engine.model.manifest import read_manifest

    manifest = read_manifest(model)
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"broker: Apache Kafka {base.kafka_version} (KRaft, single node, loopback), 8 partitions")
    print(
        f"events: {len(events)} real 30Music listen events; model {manifest.version} "
        f"(trained={manifest.trained}), catalog {len(np.load(model / 'tracks.npz')['track_ids'])} tracks"
    )
    print(
        f"worker: batch_max={base.batch_max}, batch_within_s={base.batch_within_s}, "
        f"queue_length={base.queue_length}, pool_size={base.pool_size}"
    )
    print()
    print(f"| {'pipeline':<44} | {'events/s':>9} | {'p50 ms':>7} | {'p99 ms':>7} |")
    print(f"|{'-' * 46}|{'-' * 11}|{'-' * 9}|{'-' * 9}|")
    print(
        f"| {'radio-engine worker (state + GRU + queue)':<44} | {engine['events_per_s']:>9.0f} | "
        f"{engine['p50_ms']:>7.1f} | {engine['p99_ms']:>7.1f} |"
    )
    print(
        f"| {'bare Faust agent, counting only':<44} | {faust_count['events_per_s']:>9.0f} | {'':>7} | {'':>7} |"
    )
    print(
        f"| {'plain aiokafka consume-decode-produce loop':<44} | {plain['events_per_s']:>9.0f} | {'':>7} | {'':>7} |"
    )
    print()
    print(
        f"latency: {engine['latency_samples']} queue updates at {args.rate:g} events/s for {args.seconds:g} s "
        "(new listeners; Kafka record time of the queue minus send time of its event)"
    )


if __name__ == "__main__":
    main()
