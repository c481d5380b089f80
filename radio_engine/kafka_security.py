"""How every Kafka client of the engine connects: the aiokafka security options from Settings.

One function, `security_kwargs`, turns the RADIO_KAFKA_* settings into the keyword arguments
aiokafka's producer, consumer and admin client take (the worker hands the same values to Faust
as its broker credentials). PLAINTEXT needs nothing; SASL_SSL is SCRAM over TLS: an SSL context
(aiokafka.helpers.create_ssl_context: the CA file, an optional client certificate and key) and
the SASL user and password. The password is read here, at connect time, from
RADIO_KAFKA_PASSWORD or the file RADIO_KAFKA_PASSWORD_FILE names, and never put in a message.
"""

from __future__ import annotations

import contextlib
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka.helpers import create_ssl_context

from radio_engine.settings import SettingError, Settings

PROTOCOLS = ("PLAINTEXT", "SASL_SSL")
MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class SaslConfig:
    """The SASL part of SASL_SSL: mechanism, user and password (repr without the password)."""

    mechanism: str
    username: str
    password: str

    def __repr__(self) -> str:
        return f"SaslConfig(mechanism={self.mechanism!r}, username={self.username!r})"


def kafka_password(settings: Settings) -> str:
    """The SASL password: RADIO_KAFKA_PASSWORD, else the file RADIO_KAFKA_PASSWORD_FILE names."""
    return settings.secret("kafka_password")


def _one_of(settings: Settings, name: str, allowed: tuple[str, ...]) -> str:
    """A setting's value, stripped and upper case; SettingError naming its variable when it is
    not one of `allowed`."""
    given = getattr(settings, name)
    value = given.strip().upper()
    if value not in allowed:
        raise SettingError(f"RADIO_{name.upper()}={given!r} is not one of {', '.join(allowed)}")
    return value


def check_protocol(settings: Settings) -> str:
    """The security protocol, upper case; SettingError for one the engine does not speak."""
    return _one_of(settings, "kafka_security_protocol", PROTOCOLS)


def sasl_config(settings: Settings) -> SaslConfig:
    """Mechanism, user and password for SASL_SSL, each checked (SettingError otherwise)."""
    mechanism = _one_of(settings, "kafka_sasl_mechanism", MECHANISMS)
    if not settings.kafka_username:
        raise SettingError("SASL_SSL needs a user name: set RADIO_KAFKA_USERNAME")
    password = kafka_password(settings)
    if not password:
        raise SettingError(
            "SASL_SSL needs a password: set RADIO_KAFKA_PASSWORD or RADIO_KAFKA_PASSWORD_FILE"
        )
    return SaslConfig(mechanism, settings.kafka_username, password)


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """A client TLS context that checks the broker's certificate and host name against the CA
    file (or the system CAs), with the client certificate and key when they are set."""
    for setting, path in (
        ("RADIO_KAFKA_SSL_CA_FILE", settings.kafka_ssl_ca_file),
        ("RADIO_KAFKA_SSL_CERT_FILE", settings.kafka_ssl_cert_file),
        ("RADIO_KAFKA_SSL_KEY_FILE", settings.kafka_ssl_key_file),
    ):
        if path and not Path(path).is_file():
            raise SettingError(f"{setting}={path}: no such file")
    if settings.kafka_ssl_key_file and not settings.kafka_ssl_cert_file:
        raise SettingError(
            "RADIO_KAFKA_SSL_KEY_FILE is set without RADIO_KAFKA_SSL_CERT_FILE: set both"
        )
    try:
        context = create_ssl_context(cafile=settings.kafka_ssl_ca_file or None)
    except ssl.SSLError as exc:
        why = getattr(exc, "reason", None) or exc
        raise SettingError(
            f"RADIO_KAFKA_SSL_CA_FILE={settings.kafka_ssl_ca_file}: not a PEM CA bundle ({why})"
        ) from None
    if settings.kafka_ssl_cert_file:
        try:
            # a password callback that gives none: an encrypted key fails here instead of
            # OpenSSL prompting on the terminal of a worker
            context.load_cert_chain(
                settings.kafka_ssl_cert_file, settings.kafka_ssl_key_file or None, lambda: ""
            )
        except ssl.SSLError as exc:
            why = getattr(exc, "reason", None) or exc
            raise SettingError(
                f"RADIO_KAFKA_SSL_CERT_FILE={settings.kafka_ssl_cert_file} / "
                f"RADIO_KAFKA_SSL_KEY_FILE={settings.kafka_ssl_key_file or '(in the cert file)'}: "
                f"cannot load the client certificate and unencrypted key ({why})"
            ) from None
    return context


def security_kwargs(settings: Settings) -> dict[str, Any]:
    """The keyword arguments every aiokafka client gets: security_protocol, and for SASL_SSL the
    ssl_context and sasl_* options. Raises SettingError (one line) for unusable settings."""
    protocol = check_protocol(settings)
    if protocol == "PLAINTEXT":
        return {"security_protocol": "PLAINTEXT"}
    sasl = sasl_config(settings)
    return {
        "security_protocol": protocol,
        "ssl_context": ssl_context(settings),
        "sasl_mechanism": sasl.mechanism,
        "sasl_plain_username": sasl.username,
        "sasl_plain_password": sasl.password,
    }


def redact(text: str, settings: Settings) -> str:
    """The text with the SASL password and the HTTP token, wherever it holds them, replaced by
    *** (a last guard for messages built from exceptions)."""
    for name in ("kafka_password", "http_token"):
        with contextlib.suppress(SettingError):
            secret = settings.secret(name)
            if secret:
                text = text.replace(secret, "***")
    return text
