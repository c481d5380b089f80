"""Phase 2: per-event latency of fresh listeners' events sent at a paced rate."""

from __future__ import annotations

from typing import Any

import numpy as np

from listen_bench.common import LATENCY_TAG
from listen_bench.kafka_io import QueueRecord, SentEvent, encode_events, send_paced
from listen_bench.metrics import breakdown, diff, outcomes, scrape_all, total
from listen_bench.workers import Workers, wait_processed


def fresh_listeners(events: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """`count` events in the backlog's order, listener ids prefixed so the worker has never seen
    them (a second pass over the events gets another prefix)."""
    out = []
    for i in range(count):
        e = events[i % len(events)]
        out.append({**e, "listener_id": f"{LATENCY_TAG}{i // len(events)}-{e['listener_id']}"})
    return out


def event_latencies(
    sent: list[SentEvent], queues: list[QueueRecord]
) -> tuple[list[float], list[dict[str, Any]]]:
    """Per event: the first queue record (topic order) of its listener whose after_event is on the
    event's partition at or after its offset; latency = queue record time - event record time.
    Returns (latencies in seconds, the events with no such queue and what their listener got).
    """
    by_listener: dict[str, list[QueueRecord]] = {}
    for q in queues:
        by_listener.setdefault(q.listener, []).append(q)
    latencies, missing = [], []
    for e in sent:
        mine = by_listener.get(e.listener, [])
        answer = next(
            (q for q in mine if q.partition == e.partition and q.offset >= e.offset), None
        )
        if answer is not None:
            latencies.append((answer.ts_ms - e.ts_ms) / 1000)
            continue
        last = max(mine, key=lambda q: q.offset, default=None)
        missing.append(
            {
                "listener": e.listener,
                "partition": e.partition,
                "offset": e.offset,
                "listener_queues": len(mine),
                "latest_after_event": None if last is None else [last.partition, last.offset],
            }
        )
    return latencies, missing


async def paced_latency(
    workers: Workers, events: list[dict[str, Any]], rate: float, seconds: float
) -> dict[str, Any]:
    """Pace fresh listeners' events at `rate` for `seconds`; latency of every event."""
    assert workers.queues is not None
    batch = fresh_listeners(events, max(1, int(rate * seconds)))
    encoded = encode_events(batch)
    before, cpu0 = await scrape_all(workers.ports), workers.cpu()
    sent, achieved = await send_paced(
        workers.settings, workers.settings.topic_listens, encoded, rate
    )
    await wait_processed(workers, total(before, "radio_listen_events_total") + len(sent))
    cpu1 = workers.cpu()
    await workers.queues.catch_up()
    after = await scrape_all(workers.ports)
    ours = [q for q in workers.queues.items if q.listener.startswith(LATENCY_TAG)]
    lat, missing = event_latencies(sent, ours)
    ms = np.array(lat) * 1000
    pct = (lambda p: float(np.percentile(ms, p))) if lat else (lambda p: float("nan"))
    worker_mean = diff(after, before, "radio_event_to_queue_seconds_sum") / max(
        1.0, diff(after, before, "radio_event_to_queue_seconds_count")
    )
    return {
        "rate": rate,
        "achieved_rate": achieved,
        "seconds": seconds,
        "events": len(sent),
        "listeners": len({e["listener_id"] for e in batch}),
        "processed": diff(after, before, "radio_listen_events_total"),
        "outcomes": outcomes(after, before),
        "measured": len(lat),
        "no_queue": len(missing),
        "no_queue_events": missing[:50],
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "max_ms": float(ms.max()) if lat else float("nan"),
        "worker_mean_ms": worker_mean * 1000,
        "negative": int((ms < 0).sum()),
        "cpu_s": [b - a for a, b in zip(cpu0, cpu1, strict=True)],
        "breakdown": breakdown(after, before),
    }
