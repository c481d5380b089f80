"""Phases 3 and 4, the baselines without the engine: the bare Faust counter, a plain aiokafka loop."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from listen_bench.common import ROOT, STALL_S, Encoded
from listen_bench.kafka_io import TopicReader, create_topics, send_backlog
from listen_bench.workers import check_alive, stop_process
from radio_engine import schemas
from radio_engine.player.kafka_io import make_consumer, make_producer
from radio_engine.settings import Settings


async def faust_counter(settings: Settings, encoded: Encoded, tmp: Path) -> dict[str, Any]:
    """faust_counter.py over its own 8-partition topic holding the N events (sent first)."""
    topic = f"bench-faust-{time.time_ns()}.listens"
    await create_topics(settings, topic)
    await send_backlog(settings, topic, encoded)
    result, log = tmp / "faust-result.json", tmp / "faust.log"
    env = {
        **os.environ,
        "BENCH_BROKER": settings.broker,
        "BENCH_TOPIC": topic,
        "BENCH_N": str(len(encoded)),
        "BENCH_APP": f"bench-count-{time.time_ns()}",
        "BENCH_OUT": str(result),
    }
    with open(log, "wb") as handle:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / "faust_counter.py")],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=tmp,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 300
        while not result.exists():
            check_alive([proc], [log])
            if time.monotonic() > deadline:
                raise TimeoutError(f"faust counter did not count {len(encoded)} events; see {log}")
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.2)
        done = json.loads(result.read_text())
    finally:
        stop_process(proc)
    return {
        "events": done["events"],
        "sent": len(encoded),
        "events_per_s": done["events"] / (done["last"] - done["first"]),
        "window_s": done["last"] - done["first"],
    }


# -- 4: the plain aiokafka loop ------------------------------------------------------------------


async def aiokafka_loop(settings: Settings, encoded: Encoded) -> dict[str, Any]:
    """Consume -> decode + validate -> produce one record per input, as one batched send per
    partition (the engine's own decoder and send path); sends awaited per fetch.

    Timed from the first consumed batch to the last acknowledged send; the output topic's end
    offsets must then sum to N.
    """
    source, sink = (f"bench-plain-{time.time_ns()}.{x}" for x in ("listens", "out"))
    await create_topics(settings, source, sink)
    await send_backlog(settings, source, encoded)
    consumer = make_consumer(settings, source, max_partition_fetch_bytes=4 * 1024 * 1024)
    decode = schemas.struct_decoder("listen")
    producer = make_producer(settings)
    await consumer.start()
    await producer.start()
    n, first, idle_since = 0, 0.0, time.monotonic()
    try:
        while n < len(encoded):
            batch = await consumer.getmany(timeout_ms=500, max_records=2000)
            records = [r for rs in batch.values() for r in rs]
            if not records:
                if time.monotonic() - idle_since > STALL_S:
                    raise RuntimeError(f"aiokafka loop stalled at {n} of {len(encoded)}")
                continue
            first, idle_since = first or time.time(), time.monotonic()
            await asyncio.gather(*await _produce_batched(producer, sink, batch, decode))
            n += len(records)
        last = time.time()
    finally:
        await consumer.stop()
        await producer.stop()
    reader = await TopicReader(settings, sink, lambda r: None).start()
    try:
        produced = sum((await reader.end_offsets()).values())
    finally:
        await reader.stop()
    return {
        "events": n,
        "sent": len(encoded),
        "produced": produced,
        "events_per_s": n / (last - first),
        "window_s": last - first,
    }


async def _produce_batched(
    producer: Any, sink: str, batch: dict[Any, list[Any]], decode: Any
) -> list[asyncio.Future[Any]]:
    """Each fetched partition's records, decoded, into one producer batch per partition."""
    futures = []
    for tp, records in batch.items():
        builder = producer.create_batch()
        for r in records:
            key = decode(r.value).listener_id.encode()
            if builder.append(key=key, value=r.value, timestamp=None) is None:
                futures.append(await producer.send_batch(builder, sink, partition=tp.partition))
                builder = producer.create_batch()
                builder.append(key=key, value=r.value, timestamp=None)
        futures.append(await producer.send_batch(builder, sink, partition=tp.partition))
    return futures
