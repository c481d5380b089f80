"""Why a Kafka connection fails, in one line: no broker, an untrusted certificate, a TLS
handshake refused, a wrong SASL user or password, a mechanism the broker does not offer.

aiokafka reports any of these as "Unable to bootstrap" and logs the cause; the commands and the
worker's preflight instead open one connection the way their clients would (same security
options, kafka_security.security_kwargs) and name what failed and where. The message never
holds the password or the HTTP token (kafka_security.redact is applied last).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator

from aiokafka.conn import create_conn
from aiokafka.errors import SaslAuthenticationFailed, UnsupportedSaslMechanismError

from radio_engine.kafka_security import redact, security_kwargs
from radio_engine.settings import SettingError, Settings

#: seconds one diagnostic connection may take (TCP, TLS, ApiVersions, SASL)
CONNECT_TIMEOUT_S = 10.0


def unreachable_line(bootstrap: str) -> str:
    """The line for "nothing answers at the bootstrap address"."""
    return (
        f"cannot reach a Kafka broker at {bootstrap}: start one with "
        "`radio-engine broker start`, or point --broker / RADIO_BROKER at a running one"
    )


def bootstrap_servers(bootstrap: str) -> list[tuple[str, int]]:
    """(host, port) of every server in a bootstrap string (a missing port means 9092)."""
    out = []
    for item in bootstrap.split(","):
        host, _, port = item.strip().rpartition(":")
        out.append((host, int(port)) if host and port.isdigit() else (item.strip(), 9092))
    return out


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what it was raised from or during, innermost last."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def explain(exc: BaseException, settings: Settings, host: str, port: int) -> tuple[str, bool]:
    """(one line naming what failed and where, whether the broker was reached at all)."""
    where = f"the Kafka broker at {host}:{port}"
    protocol = settings.kafka_security_protocol.upper()
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            ca = settings.kafka_ssl_ca_file or "(empty: the system CAs)"
            return (
                f"TLS to {where} failed: its certificate is not trusted "
                f"({cause.verify_message}); checked against RADIO_KAFKA_SSL_CA_FILE={ca}",
                True,
            )
        if isinstance(cause, ssl.SSLError):
            why = getattr(cause, "reason", None) or cause
            return (
                f"TLS handshake with {where} failed ({why}): is it a SASL_SSL listener, and "
                "does it ask for a client certificate (RADIO_KAFKA_SSL_CERT_FILE)?",
                True,
            )
        if isinstance(cause, SaslAuthenticationFailed):
            return (
                f"SASL {settings.kafka_sasl_mechanism.upper()} authentication as user "
                f"{settings.kafka_username!r} failed at {host}:{port}: wrong user name or "
                "password (RADIO_KAFKA_USERNAME, RADIO_KAFKA_PASSWORD or "
                f"RADIO_KAFKA_PASSWORD_FILE); the broker said: {cause}",
                True,
            )
        if isinstance(cause, UnsupportedSaslMechanismError):
            return f"{where} refused the SASL mechanism: {cause}", True
    if isinstance(exc, asyncio.TimeoutError):
        return (
            f"{where} did not answer within {CONNECT_TIMEOUT_S:.0f} s: does that listener speak "
            f"RADIO_KAFKA_SECURITY_PROTOCOL={protocol}?",
            False,
        )
    if isinstance(exc, ConnectionRefusedError) or (
        isinstance(exc, OSError) and not isinstance(exc, ConnectionError)
    ):
        return unreachable_line(settings.broker), False  # refused, no route, unknown host
    if isinstance(exc, ConnectionError):  # accepted, then dropped: often TLS to a plain port
        return (
            f"{where} dropped the connection ({type(exc).__name__}) before it was set up: "
            f"does that listener speak RADIO_KAFKA_SECURITY_PROTOCOL={protocol}?",
            True,
        )
    return (
        f"connecting to {where} with {protocol} failed ({type(exc).__name__}: {exc}): does that "
        "listener speak this protocol?",
        True,
    )


async def connection_problem(
    settings: Settings, timeout_s: float = CONNECT_TIMEOUT_S
) -> str | None:
    """None when one bootstrap server accepts a connection made with the clients' security
    options; otherwise one line saying why not (an authentication or TLS failure before a
    server that cannot be reached)."""
    try:
        options = security_kwargs(settings)
    except SettingError as exc:
        return str(exc)
    lines: list[tuple[str, bool]] = []
    for host, port in bootstrap_servers(settings.broker):
        try:
            conn = await asyncio.wait_for(
                create_conn(host, port, request_timeout_ms=int(timeout_s * 1000), **options),
                timeout_s,
            )
        except Exception as exc:  # every failure becomes a line; the caller prints it
            lines.append(explain(exc, settings, host, port))
            continue
        conn.close()
        return None
    reached = [line for line, got_there in lines if got_there]
    return redact((reached or [line for line, _ in lines])[0], settings)


def problem_sync(settings: Settings, timeout_s: float = CONNECT_TIMEOUT_S) -> str | None:
    """connection_problem for code outside an event loop (a command's error path, preflight)."""
    return asyncio.run(connection_problem(settings, timeout_s))
