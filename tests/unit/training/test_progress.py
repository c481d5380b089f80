"""Training progress without a terminal: plain lines, at most one per interval, none when off."""

from __future__ import annotations

import pytest

from radio_engine.training.progress import Progress


def test_without_a_terminal_each_interval_prints_a_plain_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    shown = Progress("phase 1 epoch 1/2", total=4, every_s=0.0)
    for _ in range(4):
        shown.update(loss=2.5)
    shown.close()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    assert lines[-1].startswith("  phase 1 epoch 1/2: step 4/4 (100 %), loss 2.5000, ")
    assert lines[-1].endswith(" s")


def test_lines_wait_for_their_interval_and_a_disabled_progress_is_silent(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for shown in (Progress("a", total=500, every_s=3600.0), Progress("b", 500, enabled=False)):
        for _ in range(500):
            shown.update(loss=1.0)
        shown.close()
        assert shown.done == 500
    assert capsys.readouterr().out == ""
