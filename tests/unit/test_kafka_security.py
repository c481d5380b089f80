"""The aiokafka security options every client gets, and the one line a failed connection gives
(the real broker's answers are checked in tests/integration/test_security.py)."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
from aiokafka.errors import SaslAuthenticationFailed

from radio_engine.broker.launcher import free_port
from radio_engine.broker.topics import TopicCreationFailed, raise_topic_errors, topic_specs
from radio_engine.kafka_diagnosis import connection_problem, explain, unreachable_line
from radio_engine.kafka_security import redact, sasl_config, security_kwargs
from radio_engine.player.kafka_io import producer_acks
from radio_engine.settings import SettingError, Settings
from tests.tls import Pki, make_pki

PASSWORD = "s3cret-Kafka"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def sasl(**overrides: object) -> Settings:
    base = {
        "kafka_security_protocol": "SASL_SSL",
        "kafka_username": "radio",
        "kafka_password": PASSWORD,
    }
    return Settings().with_overrides(**{**base, **overrides})


def test_plaintext_is_the_default_and_needs_nothing() -> None:
    assert security_kwargs(Settings()) == {"security_protocol": "PLAINTEXT"}


def test_sasl_ssl_gives_scram_and_a_context_that_checks_the_broker(pki: Pki) -> None:
    options = security_kwargs(
        sasl(kafka_ssl_ca_file=str(pki.ca), kafka_sasl_mechanism="scram-sha-256")
    )
    context = options.pop("ssl_context")
    assert options == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "radio",
        "sasl_plain_password": PASSWORD,
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "radio-test-ca"),),)]


def test_a_client_certificate_is_loaded_and_an_encrypted_key_refused(
    pki: Pki, tmp_path: Path
) -> None:
    options = security_kwargs(
        sasl(kafka_ssl_cert_file=str(pki.client_cert), kafka_ssl_key_file=str(pki.client_key))
    )
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    locked = tmp_path / "locked.key"
    import subprocess

    subprocess.run(
        ["openssl", "pkey", "-in", str(pki.client_key), "-aes256", "-passout", "pass:x",
         "-out", str(locked)],
        check=True,
    )  # fmt: skip
    with pytest.raises(SettingError, match="cannot load the client certificate and unencrypted"):
        security_kwargs(
            sasl(kafka_ssl_cert_file=str(pki.client_cert), kafka_ssl_key_file=str(locked))
        )


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"kafka_security_protocol": "SSL"}, "RADIO_KAFKA_SECURITY_PROTOCOL='SSL' is not one of"),
        ({"kafka_sasl_mechanism": "PLAIN"}, "RADIO_KAFKA_SASL_MECHANISM='PLAIN' is not one of"),
        ({"kafka_username": ""}, "SASL_SSL needs a user name: set RADIO_KAFKA_USERNAME"),
        ({"kafka_password": ""}, "SASL_SSL needs a password: set RADIO_KAFKA_PASSWORD or"),
        (
            {"kafka_ssl_ca_file": "/nowhere/ca.pem"},
            "RADIO_KAFKA_SSL_CA_FILE=/nowhere/ca.pem: no such",
        ),
        ({"kafka_ssl_key_file": __file__}, "RADIO_KAFKA_SSL_KEY_FILE is set without"),
        ({"kafka_ssl_ca_file": __file__}, "not a PEM CA bundle"),
    ],
)
def test_settings_that_cannot_work_are_one_line(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(SettingError) as caught:
        security_kwargs(sasl(**overrides))
    assert message in str(caught.value) and PASSWORD not in str(caught.value)


def test_the_sasl_config_repr_and_redact_hide_the_password(tmp_path: Path) -> None:
    assert PASSWORD not in repr(sasl_config(sasl()))
    assert redact(f"said {PASSWORD} twice {PASSWORD}", sasl()) == "said *** twice ***"
    path = tmp_path / "pw"
    path.write_text("from-a-file\n")
    from_file = sasl(kafka_password="", kafka_password_file=str(path))
    assert redact("x from-a-file y", from_file) == "x *** y"


def test_each_failure_is_named_with_where_it_happened() -> None:
    settings = sasl(kafka_ssl_ca_file="/etc/ca.pem")
    line, reached = explain(SaslAuthenticationFailed("invalid credentials"), settings, "h", 9)
    assert reached and line.startswith(
        "SASL SCRAM-SHA-512 authentication as user 'radio' failed at h:9: wrong user name or "
        "password"
    )
    untrusted = ssl.SSLCertVerificationError(1, "certificate verify failed")
    untrusted.verify_message = "unable to get local issuer certificate"
    line, _ = explain(untrusted, settings, "h", 9)
    assert line == (
        "TLS to the Kafka broker at h:9 failed: its certificate is not trusted (unable to get "
        "local issuer certificate); checked against RADIO_KAFKA_SSL_CA_FILE=/etc/ca.pem"
    )
    wrapped = ConnectionError("closed")
    wrapped.__cause__ = ssl.SSLError(1, "alert")
    assert explain(wrapped, settings, "h", 9)[0].startswith("TLS handshake with the Kafka broker")
    assert explain(ConnectionRefusedError(), settings, "h", 9) == (
        unreachable_line(settings.broker),
        False,
    )
    assert "did not answer within" in explain(TimeoutError(), settings, "h", 9)[0]
    assert "dropped the connection" in explain(ConnectionResetError(), settings, "h", 9)[0]


def test_nothing_listening_is_the_unreachable_line() -> None:
    settings = sasl(broker=f"127.0.0.1:{free_port()}")
    assert asyncio.run(connection_problem(settings, 3)) == unreachable_line(settings.broker)
    bad = sasl(kafka_sasl_mechanism="GSSAPI")
    assert "RADIO_KAFKA_SASL_MECHANISM='GSSAPI'" in (asyncio.run(connection_problem(bad)) or "")


def test_topics_carry_the_replication_factor_and_min_insync_replicas() -> None:
    for spec in topic_specs(Settings(topic_replication_factor=3)):
        assert spec.replication_factor == 3 and spec.configs["min.insync.replicas"] == "2"
    specs = {s.name: s for s in topic_specs(Settings())}
    assert specs["radio.listens.v1"].replication_factor == 1
    assert specs["radio.tracks.v1"].configs == {
        "cleanup.policy": "compact",
        "min.cleanable.dirty.ratio": "0.1",
        "min.insync.replicas": "1",
    }
    assert (
        producer_acks(Settings()) == 1
        and producer_acks(Settings(topic_replication_factor=3)) == "all"
    )


def test_a_refused_topic_is_an_error_and_an_existing_one_is_not() -> None:
    raise_topic_errors([("a", 0, None), ("b", 36, "Topic 'b' already exists.")])
    with pytest.raises(TopicCreationFailed) as caught:
        raise_topic_errors([("c", 38, "only 1 broker(s) are registered"), ("d", 0, None)])
    assert str(caught.value) == (
        "the broker refused to create c: INVALID_REPLICATION_FACTOR "
        "(only 1 broker(s) are registered)"
    )
