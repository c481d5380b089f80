"""Bulk changelog recovery: a fetched batch of a listener-table changelog partition is applied
to the table's store in one call, instead of record by record through Faust's recovery path.

Faust (faust-streaming 0.15) takes every changelog record through its per-message path (the
consumer's drain loop, the conductor, the changelog queue, `Recovery._slurp_changelogs`):
~300-450 us a record on this machine, 30+ s for 100,000 listeners. Here the bulk transport
(worker/transport.py) hands each fetched batch of a registered table's changelog to
`apply_fetched`, which does what `_slurp_changelogs` does for each record, once per batch:
  1. the batch of an active changelog partition goes to `Recovery.active_offsets`' side, of a
     standby one to `standby_offsets`'; a partition that is neither is not ours: dropped;
  2. records at or below the offset recovery has already reached are skipped (a seek back
     repeats them), the rest applied to the store in order (`ListenerStore.apply_records`)
     after anything Faust itself still buffers for the table;
  3. the offset reached is set in that same bookkeeping;
  4. when active recovery has then reached every highwater, recovery is ended exactly as
     `_slurp_changelogs` ends it (buffers flushed, `_set_recovery_ended`, `signal_recovery_end`);
     when the standbys are caught up, `TableManager.on_standbys_ready` is called.
Records fetched while the app's flow is suspended (a rebalance) are dropped unapplied, as Faust
drops its own, and their partitions sought back to just after the offset of step 3
(`resume_offsets`): recovery seeks every changelog partition there before it resumes the flow,
but a fetch may return after that seek and before the flow resumes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from faust.types import TP

from radio_engine.listeners.store import unseen
from radio_engine.worker import metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Applied:
    """What one fetch's changelog batches did."""

    #: records applied to active partitions (the rest were repeats, or not this worker's)
    active: int
    #: records applied to standby copies
    standby: int
    #: this fetch completed active recovery (Faust now pauses the changelogs, resumes streams)
    ended_recovery: bool


def apply_fetched(
    app: Any, tables: Mapping[str, Any], fetched: Mapping[TP, Sequence[Any]]
) -> Applied:
    """Apply fetched changelog batches (`tables`: changelog topic -> table with a
    `ListenerStore`) through Faust's recovery bookkeeping (steps 1-4 of the module docstring)."""
    recovery = app.tables.recovery
    applied = {"active": 0, "standby": 0}
    now = time.monotonic()
    for tp, batch in fetched.items():
        if not batch:
            continue
        if tp in recovery.active_tps:
            copy, offsets = "active", recovery.active_offsets
            received = recovery._active_events_received_at
        elif tp in recovery.standby_tps:
            copy, offsets = "standby", recovery.standby_offsets
            received = recovery._standby_events_received_at
        else:
            log.debug("%s: changelog records of a partition neither active nor standby", tp)
            continue
        table = tables[tp.topic]
        fresh = unseen(batch, offsets.get(tp))
        received[tp] = now
        if not fresh:
            continue
        if recovery.buffers.get(table):  # Faust's own path buffered some: those come first
            recovery.flush_buffers()
        applied[copy] += table.data.apply_records(tp.partition, fresh)
        offsets[tp] = fresh[-1].offset
    for copy, count in applied.items():
        if count:
            metrics.CHANGELOG_RECORDS.labels(copy).inc(count)
    return Applied(applied["active"], applied["standby"], maybe_end_recovery(recovery))


def resume_offsets(app: Any, tps: Iterable[TP]) -> dict[TP, int]:
    """Where reading must resume for changelog partitions whose fetched records were dropped
    (the flow was suspended): just after the offset recovery has reached, for the active and
    standby partitions whose offset it knows. Without a seek the consumer would go on past the
    dropped records: recovery seeks before it resumes, but a fetch can return after that
    seek and before the flow resumes."""
    recovery = app.tables.recovery
    resume: dict[TP, int] = {}
    for tp in tps:
        for known, offsets in (
            (recovery.active_tps, recovery.active_offsets),
            (recovery.standby_tps, recovery.standby_offsets),
        ):
            offset = offsets.get(tp) if tp in known else None
            if offset is not None:
                resume[tp] = max(offset + 1, 0)
    return resume


def maybe_end_recovery(recovery: Any) -> bool:
    """End active recovery once every active highwater is reached (returns True then), and
    mark the standbys ready once they are caught up: what `_slurp_changelogs` does after each
    record."""
    ended = False
    if recovery.in_recovery and not recovery.need_recovery():
        started = recovery._recovery_started_at
        recovery.flush_buffers()
        recovery._set_recovery_ended()
        recovery.signal_recovery_end.set()
        ended = True
        if started is not None:
            log.info(
                "table recovery done in %.2f s (changelogs read in bulk)",
                time.monotonic() - started,
            )
    tables = recovery.tables
    if not tables.standbys_ready and recovery.standby_tps and _standbys_caught_up(recovery):
        tables.on_standbys_ready()
    return ended


def _standbys_caught_up(recovery: Any) -> bool:
    """Whether every standby partition with a known highwater and offset has reached it."""
    highwaters, offsets = recovery.standby_highwaters, recovery.standby_offsets
    for tp in recovery.standby_tps:
        highwater, offset = highwaters.get(tp), offsets.get(tp)
        if highwater is None or offset is None or offset < highwater:
            return False
    return True
