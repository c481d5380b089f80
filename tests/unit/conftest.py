"""Shared fixtures for unit tests: a small real model directory, exported by the real exporter."""

from __future__ import annotations

from pathlib import Path

import pytest

from radio_engine.model.runtime import ServingModel
from radio_engine.settings import Settings

DATA = Settings().data_path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 tracks by 8 artists, untrained weights, written by training.export (ONNX and all)."""
    import torch

    from radio_engine.training.export import export_random_model

    torch.set_num_threads(1)
    tracks = [f"t{i}" for i in range(40)]
    artists = [f"a{i % 8}" for i in range(40)]
    return export_random_model(tmp_path_factory.mktemp("tiny") / "model", tracks, artists, seed=3)


@pytest.fixture
def tiny_model(tiny_model_dir: Path) -> ServingModel:
    return ServingModel(tiny_model_dir)
