"""The crash verifier's short form on the real broker: two SIGKILLs, a worker added and one
removed while events flow; afterwards every listener's state must equal an offline replay,
every event applied exactly once, and the last published queue the state's."""

from __future__ import annotations

from pathlib import Path

from radio_engine.broker.launcher import broker_for
from radio_engine.settings import Settings
from radio_engine.verify.run import Chaos, verify


def test_crashes_and_rebalances_lose_and_double_nothing(
    kafka_settings: Settings, slice_model: Path, tmp_path: Path
) -> None:
    chaos = Chaos(listeners=30, events_per_listener=40, workers=2, kills=2, rate=100.0, seed=3)
    report = verify(kafka_settings, slice_model, chaos, tmp_path)
    print(report.table())
    assert report.kills == 2 and report.joins == 1 and report.leaves == 1
    assert report.verdict.checked == 30 and not report.verdict.mismatches, report.table()
    assert report.rebuilt_checked > 0 and report.rebuilt_mismatches == 0, report.table()
    assert report.ok


def test_a_broker_crash_under_load_loses_and_doubles_nothing(
    slice_model: Path, tmp_path: Path
) -> None:
    """The broker is SIGKILLed mid-run and started again (a broker of this test's own): the
    workers resume by themselves and the same checks hold."""
    chaos = Chaos(
        listeners=20, events_per_listener=40, workers=2, kills=0, broker_restarts=1, rate=100.0
    )
    with broker_for(Settings.from_env(), isolated=True) as broker:
        settings = broker.settings.with_overrides(topic_partitions=4)
        report = verify(settings, slice_model, chaos, tmp_path, broker=broker)
    print(report.table())
    assert report.broker_restarts == 1
    assert report.verdict.checked == 20 and not report.verdict.mismatches, report.table()
    assert report.ok, report.table()
