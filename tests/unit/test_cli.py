"""Every subcommand the CLI offers resolves to a function that exists; send / dead-letters
arguments, and --help showing each option's default."""

from __future__ import annotations

import argparse

import pytest

from radio_engine import schemas
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


def test_send_arguments_parse_with_their_defaults() -> None:
    args = build_parser().parse_args(
        ["send", "--listener", "L", "--track", "T", "--event", "skip", "--dwell", "0.3"]
    )
    assert (args.listener, args.track, args.event, args.dwell) == ("L", "T", "skip", 0.3)
    assert args.ts is None and args.event_id is None and args.artist is None
    letters = build_parser().parse_args(["dead-letters", "--limit", "5", "--json"])
    assert (letters.follow, letters.limit, letters.json) == (False, 5, True)


def test_send_offers_exactly_the_schemas_events() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    event = next(a for a in sub.choices["send"]._actions if a.dest == "event")
    assert list(event.choices) == schemas.load_schema("listen")["properties"]["event"]["enum"]


@pytest.mark.parametrize("command", ["send", "dead-letters", "tail", "demo", "replay"])
def test_help_shows_every_options_default(command: str) -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    page = sub.choices[command]
    text = " ".join(page.format_help().split())
    for action in page._actions:
        if action.default not in (None, False, argparse.SUPPRESS) and action.option_strings:
            assert f"(default: {action.default})" in text, action.dest
    if command == "send":
        assert "(default: now)" in text and "(default: a new uuid4)" in text
    if command == "demo":
        assert "(default: 3600.0)" in text


def test_an_invalid_event_on_the_command_line_needs_no_broker(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["send", "--listener", "L", "--track", "T", "--event", "skip", "--dwell", "2"]
    assert main([*argv, "--broker", "127.0.0.1:1"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == (
        "radio-engine send: invalid listen event: dwell_ratio must be smaller than or equal to 1 "
        "(got 2.0)"
    )


def test_an_unknown_event_kind_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["send", "--listener", "L", "--track", "T", "--event", "dance"])
    assert exited.value.code == 2
    assert "invalid choice: 'dance'" in capsys.readouterr().err
