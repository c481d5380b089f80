"""One typed training config: every hyper-parameter documented, built by the command line."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from radio_engine.cli import build_parser
from radio_engine.training.config import TrainConfig


def test_every_field_has_a_doc_and_a_plain_value() -> None:
    described = TrainConfig.describe()
    assert [name for name, *_ in described] == [f.name for f in dataclasses.fields(TrainConfig)]
    for name, _, default, doc in described:
        assert len(doc) > 10, name
        assert default is None or isinstance(default, bool | int | float | str), name
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
    ablation = ["--artist-init", "random", "--indicators-in-loss", "--threads", "1"]
    config = TrainConfig.from_args(parse(["train", "--events", "e.csv", "--out", "m", *ablation]))
    assert (config.artist_init, config.indicators_in_loss, config.threads) == ("random", True, 1)
    assert config.choice_key == "valid_hr" and TrainConfig().choice_key == "valid_gru_hr"
    with pytest.raises(ValueError, match="artist_init"):
        TrainConfig(artist_init="svd")
    with pytest.raises(ValueError, match="epochs must be at least 1, not 0"):
        TrainConfig(epochs=0)


def test_the_command_line_refuses_epochs_below_one_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for value, message in (("0", "must be at least 1, not 0"), ("x", "not a whole number: 'x'")):
        with pytest.raises(SystemExit) as stopped:
            build_parser().parse_args(
                ["train", "--events", "e.csv", "--out", "m", "--epochs", value]
            )
        assert stopped.value.code == 2
        assert f"argument --epochs: {message}" in capsys.readouterr().err


def test_the_config_is_frozen() -> None:
    config = TrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 3  # type: ignore[misc]
    assert config.replace(epochs=3).epochs == 3 and config.epochs == 10


def test_the_learning_rate_falls_along_the_planned_epochs_and_the_refit_keeps_it() -> None:
    from radio_engine.training.loop import learning_rate_at

    constant = TrainConfig(final_learning_rate_share=1.0)
    assert {learning_rate_at(constant, e) for e in range(10)} == {constant.learning_rate}
    config = TrainConfig(epochs=10, learning_rate=2e-3, final_learning_rate_share=0.05)
    rates = [learning_rate_at(config, e) for e in range(10)]
    assert rates[0] == 2e-3 and abs(rates[-1] - 1e-4) < 1e-12
    assert all(a > b for a, b in itertools.pairwise(rates))
    # the refit runs fewer epochs on the same schedule: its rates are phase 1's first ones
    refit = config.replace(epochs=6, schedule_epochs=10)
    assert [learning_rate_at(refit, e) for e in range(6)] == rates[:6]
