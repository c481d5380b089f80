"""One typed training config: every hyper-parameter documented, built by the command line."""

from __future__ import annotations

import dataclasses

import pytest

from radio_engine.cli import build_parser
from radio_engine.training.config import TrainConfig


def test_every_field_has_a_doc_and_a_plain_value() -> None:
    described = TrainConfig.describe()
    assert [name for name, *_ in described] == [f.name for f in dataclasses.fields(TrainConfig)]
    for name, _, default, doc in described:
        assert len(doc) > 10, name
        assert default is None or isinstance(default, bool | int | float), name
    assert TrainConfig().to_dict()["negatives"] == 1024


def test_the_command_line_builds_the_config() -> None:
    parse = build_parser().parse_args
    args = parse(["train", "--events", "e.csv", "--out", "m"])
    assert TrainConfig.from_args(args) == TrainConfig()  # the options' defaults are the config's
    options = ["--epochs", "2", "--seed", "5", "--audio-steps", "9", "--max-minutes", "1.5"]
    args = parse(
        ["train", "--events", "e.csv", "--out", "m", *options, "--id-only", "--no-feedback"]
    )
    config = TrainConfig.from_args(args)
    assert (config.epochs, config.seed, config.audio_steps, config.max_minutes) == (2, 5, 9, 1.5)
    assert config.id_only and not config.feedback
    assert config.negatives == TrainConfig.negatives  # what the command line does not set


def test_the_config_is_frozen() -> None:
    config = TrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 3  # type: ignore[misc]
    assert config.replace(epochs=3).epochs == 3 and config.epochs == 6
