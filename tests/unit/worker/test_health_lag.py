"""/health's decision (liveness vs readiness) and the consumer-lag gauge's bookkeeping."""

from __future__ import annotations

import dataclasses

from faust.types import TP
from prometheus_client import generate_latest

from radio_engine.worker import metrics
from radio_engine.worker.health import OK, UNAVAILABLE, HealthState, decide
from radio_engine.worker.lag import LagGauge, lag_records

READY = HealthState(
    consumer_started=True,
    broker_connected=True,
    generation=3,
    assigned_partitions=4,
    rebalancing=False,
    recovering=False,
)


def test_a_ready_worker_is_live_and_ready() -> None:
    assert decide(READY, ready=False) == (OK, None)
    assert decide(READY, ready=True) == (OK, None)


def test_without_a_broker_connection_neither_live_nor_ready() -> None:
    lost = dataclasses.replace(READY, broker_connected=False)
    for ready in (False, True):
        status, reason = decide(lost, ready)
        assert status == UNAVAILABLE and "broker" in (reason or "")
    status, reason = decide(dataclasses.replace(READY, consumer_started=False), False)
    assert status == UNAVAILABLE and reason == "consumer not started"


def test_recovery_rebalance_and_no_assignment_fail_readiness_only() -> None:
    cases = {
        "table recovery running": dataclasses.replace(READY, recovering=True, rebalancing=True),
        "rebalance in progress": dataclasses.replace(READY, rebalancing=True),
        "not yet assigned partitions by the consumer group": dataclasses.replace(
            READY, generation=0
        ),
    }
    for reason, state in cases.items():
        assert decide(state, ready=False) == (OK, None)
        assert decide(state, ready=True) == (UNAVAILABLE, reason)


def test_lag_is_end_minus_position_where_both_are_known() -> None:
    a, b, c = TP("listens", 0), TP("listens", 1), TP("audio", 0)
    assert lag_records({a: 10, b: None, c: 7}, {a: 25, b: 40, c: 5}) == {a: 15, c: 0}


def lag_lines() -> set[str]:
    text = generate_latest(metrics.REGISTRY).decode()
    return {line for line in text.splitlines() if line.startswith("radio_consumer_lag_records{")}


def test_revoked_partitions_lose_their_series() -> None:
    gauge = LagGauge()
    a, b = TP("t-unit-lag", 0), TP("t-unit-lag", 1)
    gauge.publish({a: 5, b: 0}, {a, b})
    assert {
        'radio_consumer_lag_records{partition="0",topic="t-unit-lag"} 5.0',
        'radio_consumer_lag_records{partition="1",topic="t-unit-lag"} 0.0',
    } <= lag_lines()
    # partition 1 revoked; partition 0 still assigned but not measured this tick: kept
    gauge.publish({}, {a})
    mine = {line for line in lag_lines() if "t-unit-lag" in line}
    assert mine == {'radio_consumer_lag_records{partition="0",topic="t-unit-lag"} 5.0'}
    gauge.publish({}, set())
    assert not {line for line in lag_lines() if "t-unit-lag" in line}
