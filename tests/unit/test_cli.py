"""Every subcommand the CLI offers resolves to a function that exists."""

from __future__ import annotations

from radio_engine.cli import COMMANDS, _resolve, build_parser, main


def test_every_command_resolves_to_a_callable() -> None:
    for name, target in COMMANDS.items():
        assert callable(_resolve(target)), name


def test_parser_knows_exactly_the_mapped_commands() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == set(COMMANDS)


def test_settings_command_prints_every_env_var(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["settings"]) == 0
    out = capsys.readouterr().out
    assert "RADIO_BROKER" in out and "RADIO_QUEUE_LENGTH" in out


def test_a_missing_input_file_is_one_clear_line(capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "nope.csv"
    assert main(["split", "--events", str(missing), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"radio-engine split: No such file or directory: {missing}"


def test_a_path_error_raised_with_a_message_prints_that_message(capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = tmp_path / "no-model"
    argv = ["evaluate-simulated", "--model", str(model), "--simulation", str(tmp_path)]
    assert main([*argv, "--audio", str(tmp_path), "--metadata", str(tmp_path / "m.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("radio-engine evaluate-simulated: ")
    assert str(model) in err[0] and "None" not in err[0]
