"""Training stops on epoch and step counts, never on the clock: the same data, seed and command
give byte-identical model tables and the same report, and the opt-in --max-minutes guard ends a
phase only between whole epochs, saying so in the console, report.md and the manifest."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from radio_engine.cli import build_parser
from radio_engine.settings import Settings
from radio_engine.training.audio_model import AUDIO_STEPS
from radio_engine.training.report import TIMING_HEADER
from radio_engine.training.train import run

DATA = Settings().data_path
#: one real clip from each of three games
CLIPS = [
    "wesnoth-1.16-music/battle.ogg",
    "nexuiz-music/brainsukker.ogg",
    "drascula-music/track2.ogg",
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(events CSV, audio folder): the first 1,500 real events, and three real clips named after
    the three tracks played most in them, so those tracks train with audio as clip tracks do."""
    root = tmp_path_factory.mktemp("inputs")
    rows = (DATA / "30music" / "events.csv").read_text().splitlines()[:1501]
    events = root / "events.csv"
    events.write_text("\n".join(rows) + "\n")
    track_column = rows[0].split(",").index("track_id")
    top = Counter(row.split(",")[track_column] for row in rows[1:]).most_common(len(CLIPS))
    audio = root / "audio"
    audio.mkdir()
    for (track, _), clip in zip(top, CLIPS, strict=True):
        (audio / f"{track}.ogg").symlink_to(DATA / "game-music" / "clips" / clip)
    return events, audio


def _train(
    inputs: tuple[Path, Path], out: Path, epochs: int = 1, max_minutes: float | None = None
) -> Path:
    """A small but complete `train --audio` run (5 audio-encoder steps), exported to `out`."""
    events, audio = inputs
    args = argparse.Namespace(
        events=str(events),
        valid=None,
        audio=str(audio),
        metadata=None,
        out=str(out),
        epochs=epochs,
        audio_steps=5,
        max_minutes=max_minutes,
        seed=3,
        id_only=False,
        no_feedback=False,
    )
    assert run(args, Settings()) == 0
    return out


@pytest.fixture(scope="module")
def first(inputs: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train(inputs, tmp_path_factory.mktemp("first") / "model")


def _manifest(model: Path) -> dict[str, Any]:
    """manifest.json less what names the moment of export (the version's stamp, created_at)."""
    manifest = json.loads((model / "manifest.json").read_text())
    manifest["version"] = manifest["version"].rsplit("-", 1)[1]  # keeps the weights' digest
    del manifest["created_at"]
    return manifest


def _report_json(model: Path) -> dict[str, Any]:
    """report.json less its "timing" (wall clock), checked to be there."""
    report = json.loads((model / "report.json").read_text())
    assert report.pop("timing")["seconds"]["total"] > 0
    return report


def _assert_same_tables(a: Path, b: Path) -> None:
    """The exported weights and tables are the same byte for byte: ONNX files whole, npz files
    array by array (a zip stamps its members with the time they were written)."""
    tables = sorted(p.name for p in a.iterdir() if p.suffix in (".onnx", ".npz"))
    assert tables == sorted(p.name for p in b.iterdir() if p.suffix in (".onnx", ".npz"))
    assert {"audio_encoder.onnx", "listener_step.onnx", "tracks.npz", "transitions.npz"} <= set(
        tables
    )
    for name in tables:
        if name.endswith(".onnx"):
            assert (a / name).read_bytes() == (b / name).read_bytes(), name
            continue
        with np.load(a / name) as x, np.load(b / name) as y:
            assert sorted(x.files) == sorted(y.files), name
            for key in x.files:
                assert x[key].dtype == y[key].dtype and x[key].shape == y[key].shape
                assert x[key].tobytes() == y[key].tobytes(), f"{name}:{key}"


def test_two_trainings_with_one_seed_give_identical_models(
    inputs: tuple[Path, Path], first: Path, tmp_path: Path
) -> None:
    second = _train(inputs, tmp_path / "model")
    assert sorted(p.name for p in first.iterdir()) == sorted(p.name for p in second.iterdir())
    _assert_same_tables(first, second)
    assert _manifest(first) == _manifest(second)
    assert _report_json(first) == _report_json(second)
    assert (first / "training.png").read_bytes() == (second / "training.png").read_bytes()
    ours, theirs = (first / "report.md").read_text(), (second / "report.md").read_text()
    assert ours.count(TIMING_HEADER) == 1  # the run's times live below it, and only there
    assert ours.split(TIMING_HEADER)[0] == theirs.split(TIMING_HEADER)[0]
    assert "Stopped on epoch and step counts only." in ours
    metrics = _manifest(first)["metrics"]
    assert metrics["audio_steps"] == 5 and metrics["epochs"] == 1
    assert metrics["stopped_early"] == [] and metrics["max_minutes"] is None
    with np.load(first / "tracks.npz") as tracks:  # the three clip tracks were trained with audio
        assert len(tracks["track_ids"]) > 100


def test_the_time_limit_ends_a_phase_between_epochs_and_says_what_it_cost(
    inputs: tuple[Path, Path], first: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a limit already past when the first epoch ends: phase 1 stops after it, never inside it
    limited = _train(inputs, tmp_path / "model", epochs=2, max_minutes=1e-6)
    said = (
        "phase 1 (epoch choice) STOPPED EARLY by --max-minutes 1e-06: "
        "after epoch 1 of 2, 1 epoch(s) skipped"
    )
    assert said in capsys.readouterr().out
    assert f"**{said}.**" in (limited / "report.md").read_text()
    metrics = _manifest(limited)["metrics"]
    assert metrics["max_minutes"] == 1e-6
    assert metrics["stopped_early"] == [
        {
            "phase": "phase 1 (epoch choice)",
            "after_epoch": 1,
            "epochs": 2,
            "epochs_skipped": 1,
            "limit_minutes": 1e-6,
        }
    ]
    # what ran is exactly a one-epoch run: the same epoch, the same refit, the same tables
    assert metrics["epochs"] == 1
    assert _report_json(limited)["history"] == _report_json(first)["history"]
    _assert_same_tables(limited, first)


def test_the_cli_defaults_are_fixed_counts_and_no_time_limit() -> None:
    args = build_parser().parse_args(["train", "--events", "e.csv", "--out", "m"])
    assert (args.epochs, args.audio_steps, args.max_minutes) == (10, AUDIO_STEPS, None)
