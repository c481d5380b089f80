"""Secret settings (the SASL password, the HTTP token) are never shown: not in a Settings repr,
`radio-engine settings`, Settings.describe() or an error message; a child process still gets
them, and a _FILE variable is read with one trailing newline dropped."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from radio_engine.cli import show_settings
from radio_engine.settings import Secret, SettingError, Settings
from radio_engine.worker.process import settings_env

PASSWORD = "hunter2-kafka"
TOKEN = "tok-9f1e77"


def test_secrets_never_show_in_reprs_or_the_settings_table(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = Settings.from_env({"RADIO_KAFKA_PASSWORD": PASSWORD, "RADIO_HTTP_TOKEN": TOKEN})
    assert settings.kafka_password.reveal() == PASSWORD and settings.http_token.reveal() == TOKEN
    for text in (repr(settings), str(settings), f"{settings}", repr(Settings.describe())):
        assert PASSWORD not in text and TOKEN not in text
    assert "kafka_password='***'" in repr(settings)
    show_settings(argparse.Namespace(), settings)
    out = capsys.readouterr().out
    assert PASSWORD not in out and TOKEN not in out
    line = next(x for x in out.splitlines() if x.startswith("RADIO_KAFKA_PASSWORD "))
    assert line.endswith("[now '***']")


def test_a_child_process_gets_the_secrets_themselves() -> None:
    settings = Settings(kafka_password=PASSWORD, http_token=TOKEN)  # plain str: wrapped
    assert isinstance(settings.kafka_password, Secret)
    env = settings_env(settings)
    assert env["RADIO_KAFKA_PASSWORD"] == PASSWORD and env["RADIO_HTTP_TOKEN"] == TOKEN
    assert Settings.from_env(env) == settings  # the round trip keeps every value


def test_secret_compares_by_value_and_is_false_when_empty() -> None:
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b") and Secret("a") != "a"
    assert not Secret("") and Secret("x")
    assert hash(Secret("a")) == hash(Secret("a"))
    assert str(Secret("x")) == "***" and repr(Secret("")) == "''"


def test_a_secret_file_is_read_with_its_trailing_newline_dropped(tmp_path: Path) -> None:
    path = tmp_path / "password"
    path.write_text(PASSWORD + "\n")
    settings = Settings(kafka_password_file=str(path))
    assert settings.secret("kafka_password") == PASSWORD
    path.write_text(PASSWORD + "\r\n")
    assert settings.secret("kafka_password") == PASSWORD
    path.write_text(" spaced \n\n")  # only one newline goes: the rest is the secret
    assert settings.secret("kafka_password") == " spaced \n"
    assert Settings().secret("http_token") == ""


def test_unusable_secret_settings_are_one_line_without_the_secret(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(SettingError, match=f"RADIO_HTTP_TOKEN_FILE={missing}: cannot read it"):
        Settings(http_token_file=str(missing)).secret("http_token")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(SettingError, match="the file is empty"):
        Settings(kafka_password_file=str(empty)).secret("kafka_password")
    both = Settings(kafka_password=PASSWORD, kafka_password_file=str(empty))
    with pytest.raises(SettingError) as caught:
        both.secret("kafka_password")
    assert "RADIO_KAFKA_PASSWORD and RADIO_KAFKA_PASSWORD_FILE are both set" in str(caught.value)
    assert PASSWORD not in str(caught.value)


@pytest.mark.parametrize(
    "factor, min_insync", [(1, 1), (2, 1), (3, 2), (4, 3), (5, 3), (7, 4)]
)  # fmt: skip
def test_min_insync_replicas_follows_the_replication_factor(factor: int, min_insync: int) -> None:
    assert Settings(topic_replication_factor=factor).topic_min_insync_replicas == min_insync
