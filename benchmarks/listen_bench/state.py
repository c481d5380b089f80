"""Phase 6: bytes per listener in the table changelog after the backlog run."""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from listen_bench.common import PROBE
from listen_bench.kafka_io import TopicReader
from radio_engine.settings import Settings


async def state_bytes(settings: Settings) -> dict[str, Any]:
    """The table changelog's last record per key (probes left out): value bytes per listener."""
    topic = f"{settings.app_id}-listeners-changelog"
    reader = await TopicReader(settings, topic, lambda r: (r.key, r.value)).start()
    try:
        await reader.catch_up()
    finally:
        await reader.stop()
    probe = PROBE.encode()
    last: dict[bytes, bytes | None] = {}
    for key, value in reader.items:
        last[key or b""] = value
    sizes = [len(v) for k, v in last.items() if v is not None and not k.startswith(probe)]
    return {
        "topic": topic,
        "records": sum(1 for k, _ in reader.items if not (k or b"").startswith(probe)),
        "listeners": len(sizes),
        "mean_bytes": statistics.fmean(sizes) if sizes else float("nan"),
        "p50_bytes": float(np.percentile(sizes, 50)) if sizes else float("nan"),
        "max_bytes": max(sizes, default=0),
    }
