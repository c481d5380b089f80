"""Shared helpers for the checks of deploy/: where it is and which env names are real."""

from __future__ import annotations

from pathlib import Path

import pytest

from radio_engine.settings import Settings

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"


@pytest.fixture(scope="session")
def setting_names() -> set[str]:
    """Every RADIO_* environment variable the engine reads."""
    return {env for env, _, _, _ in Settings.describe()}
