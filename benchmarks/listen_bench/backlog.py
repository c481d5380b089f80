"""Phases 1 and 5: how fast serving workers clear a backlog, and what they say they did."""

from __future__ import annotations

from typing import Any

from listen_bench.common import PROBE, Encoded
from listen_bench.kafka_io import send_backlog
from listen_bench.metrics import breakdown, diff, outcomes, scrape_all, total
from listen_bench.workers import Workers, wait_processed


async def backlog_throughput(workers: Workers, encoded: Encoded) -> dict[str, Any]:
    """Send the backlog to serving workers, wait until every event is counted, read the queues.

    Besides first -> last queue record, counts what was left when the last send was acked: the
    rate over that drain has no producer competing for the CPU and no events still arriving.
    """
    assert workers.queues is not None
    before = [await scrape_all([p]) for p in workers.ports]
    cpu0 = workers.cpu()
    target = sum(total(b, "radio_listen_events_total") for b in before) + len(encoded)
    first_send, last_ack = await send_backlog(
        workers.settings, workers.settings.topic_listens, encoded
    )
    left_at_ack = target - total(await scrape_all(workers.ports), "radio_listen_events_total")
    await wait_processed(workers, target)
    cpu1 = workers.cpu()
    await workers.queues.catch_up()
    after = [await scrape_all([p]) for p in workers.ports]
    stamps = [q.ts_ms for q in workers.queues.items if not q.listener.startswith(PROBE)]
    first, last = min(stamps) / 1000, max(stamps) / 1000
    each = [diff(a, b, "radio_listen_events_total") for a, b in zip(after, before, strict=True)]
    both_after = [s for samples in after for s in samples]
    both_before = [s for samples in before for s in samples]
    return {
        "events": len(encoded),
        "processed": sum(each),
        "processed_per_worker": each,
        "outcomes": outcomes(both_after, both_before),
        "events_per_s": len(encoded) / (last - first) if last > first else float("nan"),
        "window_s": last - first,
        "wall_s": last - first_send,
        "wall_events_per_s": len(encoded) / (last - first_send),
        "send_s": last_ack - first_send,
        "arriving_share": max(0.0, last_ack - first) / (last - first) if last > first else 1.0,
        "drain_events": left_at_ack,
        "drain_s": last - last_ack,
        "drain_events_per_s": left_at_ack / (last - last_ack) if last > last_ack else float("nan"),
        "queue_records": len(stamps),
        "batch_max": getattr(workers.settings, "batch_max", None),
        "cpu_s": [b - a for a, b in zip(cpu0, cpu1, strict=True)],
        "breakdown": breakdown(both_after, both_before),
    }


def say_throughput(label: str, r: dict[str, Any]) -> None:
    """One progress line while the run goes on."""
    print(
        f"  {label}: {r['processed']:.0f}/{r['events']} processed, {r['events_per_s']:.0f} events/s "
        f"first->last queue, {r['wall_events_per_s']:.0f} events/s from first send",
        flush=True,
    )
