"""Consumer lag per assigned partition: the broker's end offset minus the consumer's position.

Run from the worker's gauges timer. The end offsets come from one ListOffsets request made on
Faust's consumer thread (awaited with a timeout, so a slow broker never stalls the event loop
for long); positions are the consumer's own next-fetch offsets, known locally.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from faust.types import TP

from radio_engine.worker import metrics

log = logging.getLogger(__name__)

#: longest wait for the broker's end offsets or a position before this tick gives up
QUERY_TIMEOUT_S = 2.0


def lag_records(positions: Mapping[TP, int | None], ends: Mapping[TP, int | None]) -> dict[TP, int]:
    """Records behind per partition where both offsets are known (never negative)."""
    out: dict[TP, int] = {}
    for tp, position in positions.items():
        end = ends.get(tp)
        if position is None or end is None:
            continue
        out[tp] = max(int(end) - int(position), 0)
    return out


class LagGauge:
    """Keeps `radio_consumer_lag_records` equal to the latest lags: a partition no longer
    assigned loses its series instead of reporting a stale value."""

    def __init__(self) -> None:
        self._labels: set[tuple[str, str]] = set()

    def publish(self, lags: Mapping[TP, int], assigned: set[TP]) -> None:
        """Set every measured partition's lag; remove series of partitions not in `assigned`."""
        for tp, lag in lags.items():
            metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(lag)
        self._labels |= {(tp.topic, str(tp.partition)) for tp in lags}
        keep = {(tp.topic, str(tp.partition)) for tp in assigned}
        for labels in self._labels - keep:
            metrics.CONSUMER_LAG.remove(*labels)
        self._labels &= keep

    async def update(self, app: Any) -> None:
        """Measure the lag of the app's assigned source partitions (not table changelogs)."""
        changelogs = set(app.tables.changelog_topics)
        assigned = {tp for tp in app.assignor.assigned_actives() if tp.topic not in changelogs}
        parts = sorted(assigned)
        lags: dict[TP, int] = {}
        if parts:
            consumer = app.consumer
            try:
                ends = await asyncio.wait_for(consumer.highwaters(*parts), QUERY_TIMEOUT_S)
                found = await asyncio.wait_for(
                    asyncio.gather(*(consumer.position(tp) for tp in parts)), QUERY_TIMEOUT_S
                )
            except Exception as exc:  # broker away or a rebalance under way: try next tick
                log.debug("consumer lag not measured this tick: %r", exc)
            else:
                lags = lag_records(dict(zip(parts, found, strict=True)), ends)
        self.publish(lags, assigned)
