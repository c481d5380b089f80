"""The crash verifier's short form on the real broker: two SIGKILLs, a worker added and one
removed while events flow; afterwards every listener's state must equal an offline replay,
every event applied exactly once, and the last published queue the state's."""

from __future__ import annotations

from pathlib import Path

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
