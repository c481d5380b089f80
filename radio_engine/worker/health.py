"""What /health answers: liveness (a live broker connection) and readiness (also assigned and
not rebalancing or recovering tables). Reads a few attributes; no broker round trip."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

OK = 200
UNAVAILABLE = 503


@dataclass(frozen=True)
class HealthState:
    """The worker's consumer as /health sees it (JSON fields of the same names)."""

    #: Faust's consumer thread has started its aiokafka consumer
    consumer_started: bool
    #: the consumer knows its group coordinator: it lost it when its broker connection failed
    broker_connected: bool
    #: consumer group generation of the last assignment (0: never assigned)
    generation: int
    #: active partitions assigned to this worker (sources and table changelogs)
    assigned_partitions: int
    #: a rebalance is under way (from partitions revoked until tables are recovered)
    rebalancing: bool
    #: table recovery (replaying changelogs into the listener table) is running
    recovering: bool

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def decide(state: HealthState, ready: bool) -> tuple[int, str | None]:
    """HTTP status and reason: liveness needs a live broker connection; readiness (`ready`)
    also needs an assignment and no rebalance or table recovery in progress."""
    if not state.consumer_started:
        return UNAVAILABLE, "consumer not started"
    if not state.broker_connected:
        return UNAVAILABLE, "no live broker connection (group coordinator unknown)"
    if not ready:
        return OK, None
    if state.generation <= 0:
        return UNAVAILABLE, "not yet assigned partitions by the consumer group"
    if state.recovering:
        return UNAVAILABLE, "table recovery running"
    if state.rebalancing:
        return UNAVAILABLE, "rebalance in progress"
    return OK, None


def read_state(app: Any) -> HealthState:
    """Read the state from the Faust app and its aiokafka consumer (Faust 0.15, aiokafka 0.14)."""
    thread = getattr(app.consumer, "_thread", None)
    consumer = getattr(thread, "_consumer", None)
    coordinator = getattr(consumer, "_coordinator", None)
    return HealthState(
        consumer_started=consumer is not None,
        broker_connected=getattr(coordinator, "coordinator_id", None) is not None,
        generation=int(app.consumer_generation_id or 0),
        assigned_partitions=len(app.assignor.assigned_actives()),
        rebalancing=bool(app.rebalancing),
        recovering=bool(app.in_recovery),
    )
