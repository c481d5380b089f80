"""SCRAM over TLS and the worker's bearer token, on a real broker of this module's own.

The broker gets a SASL_SSL listener (a throwaway CA from tests/tls.py, client
certificates required, SCRAM users created when its storage is formatted); every client here
reaches it over SASL_SSL only, the password read from a file. A worker with an HTTP token runs
on it: a listen event sent by the client comes back as a queue, the lookups answer 401 without
the token and 200 with it, and a wrong password or an untrusted certificate is one line.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from radio_engine.broker.config import SaslListener
from radio_engine.broker.launcher import broker_for, free_port
from radio_engine.broker.topics import TopicCreationFailed, ensure_topics, ensure_topics_sync
from radio_engine.client import RadioClient
from radio_engine.kafka_diagnosis import connection_problem
from radio_engine.kafka_security import security_kwargs
from radio_engine.settings import Settings
from radio_engine.worker.http_auth import COOKIE
from radio_engine.worker.process import settings_env
from tests.integration.conftest import EVENTS_CSV, WorkerProcess, start_worker, worker_settings
from tests.tls import Pki, make_pki

USER = "radio"
PASSWORD = f"pw-{secrets.token_hex(8)}"
TOKEN = secrets.token_hex(16)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def sasl_settings(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings that reach this module's broker over SASL_SSL (SCRAM-SHA-512, a client
    certificate, the password from a file), with the engine's topics created that way."""
    port = free_port()
    listener = SaslListener(
        port, pki.keystore, pki.store_password, ((USER, PASSWORD),), pki.truststore,
        pki.store_password,
    )  # fmt: skip
    password_file = tmp_path_factory.mktemp("secrets") / "kafka-password"
    password_file.write_text(PASSWORD + "\n")
    password_file.chmod(0o600)
    with broker_for(Settings.from_env(), isolated=True, sasl=listener) as broker:
        settings = broker.settings.with_overrides(
            broker=f"127.0.0.1:{port}",
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism="SCRAM-SHA-512",
            kafka_username=USER,
            kafka_password_file=str(password_file),
            kafka_ssl_ca_file=str(pki.ca),
            kafka_ssl_cert_file=str(pki.client_cert),
            kafka_ssl_key_file=str(pki.client_key),
            topic_partitions=2,
        )
        ensure_topics_sync(settings)
        yield settings


@pytest.fixture(scope="module")
def worker(
    sasl_settings: Settings, slice_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """One worker on the SASL_SSL listener whose HTTP lookups need TOKEN."""
    tmp = tmp_path_factory.mktemp("secure-worker")
    settings = worker_settings(sasl_settings, tmp, slice_model, "secure", http_token=TOKEN)
    proc = start_worker(settings, tmp / "w.log")
    yield proc
    proc.stop()
    assert PASSWORD not in (tmp / "w.log").read_text(), "the worker logged the password"


@pytest.fixture(scope="module")
def listener(worker: WorkerProcess, slice_events: list[dict[str, Any]]) -> dict[str, Any]:
    """A new listener's play sent over SASL_SSL and the first queue it brought back."""
    listener_id = f"secure-{uuid.uuid4().hex[:6]}"
    track = slice_events[0]["track_id"]

    async def go() -> dict[str, Any]:
        async with RadioClient(settings=worker.settings) as radio:
            sent = await radio.send(listener_id, track, "play")
            async for queue in radio.queues([listener_id], timeout=90):
                if queue.get("after_event", {}).get("event_id") == sent.event_id:
                    return {"listener_id": listener_id, "track": track, "queue": queue}
        raise AssertionError(f"no queue for {listener_id} after its event")

    return asyncio.run(go())


def request(
    worker: WorkerProcess,
    path: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, http.client.HTTPResponse, bytes]:
    """One HTTP request to the worker, redirects not followed: (status, response, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", worker.settings.worker_port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response, response.read()
    finally:
        conn.close()


def test_a_listen_event_over_sasl_ssl_comes_back_as_a_queue(
    worker: WorkerProcess, listener: dict[str, Any]
) -> None:
    queue = listener["queue"]
    assert queue["listener_id"] == listener["listener_id"] and queue["version"] >= 1
    assert queue["after_event"]["track_id"] == listener["track"]
    assert len(queue["tracks"]) == worker.settings.queue_length
    assert listener["track"] not in [t["track_id"] for t in queue["tracks"]]  # just played


def test_lookups_need_the_bearer_token(worker: WorkerProcess, listener: dict[str, Any]) -> None:
    lid = listener["listener_id"]
    for path in (f"/listeners/{lid}", f"/queues/{lid}", f"/live/{lid}", "/table/"):
        status, response, _ = request(worker, path)
        assert status == 401, path
        assert response.getheader("WWW-Authenticate") == 'Bearer realm="radio-engine"', path
        status, response, _ = request(worker, path, headers={"Authorization": "Bearer nope"})
        assert status == 401, path
        assert 'error="invalid_token"' in response.getheader("WWW-Authenticate", ""), path
    good = {"Authorization": f"Bearer {TOKEN}"}
    status, _, body = request(worker, f"/listeners/{lid}", headers=good)
    assert status == 200 and json.loads(body)["events"] == 1
    status, _, body = request(worker, f"/queues/{lid}", headers=good)
    assert status == 200 and json.loads(body)["version"] == listener["queue"]["version"]
    # Prometheus and the probes need none
    assert request(worker, "/metrics")[0] == 200
    assert request(worker, "/health")[0] == 200


def test_the_live_page_takes_the_token_once_then_a_cookie(
    worker: WorkerProcess, listener: dict[str, Any]
) -> None:
    lid = listener["listener_id"]
    status, response, _ = request(worker, f"/live/{lid}?token={TOKEN}")
    assert status == 303 and response.getheader("Location") == f"/live/{lid}"
    cookie = response.getheader("Set-Cookie", "")
    assert cookie.startswith(f"{COOKIE}=") and TOKEN not in cookie
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/live/" in cookie
    jar = {"Cookie": cookie.split(";")[0]}
    status, _, page = request(worker, f"/live/{lid}", headers=jar)
    assert status == 200 and b"<html" in page.lower()
    post = json.dumps({"track_id": listener["track"], "event": "like"}).encode()
    assert request(worker, f"/live/{lid}/events", "POST", body=post)[0] == 401
    status, _, body = request(worker, f"/live/{lid}/events", "POST", headers=jar, body=post)
    assert status == 202 and json.loads(body)["event_id"]
    # the cookie opens the live pages only
    assert request(worker, f"/listeners/{lid}", headers=jar)[0] == 401


def radio_engine(settings: Settings, *argv: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a child process with exactly these settings."""
    return subprocess.run(
        [sys.executable, "-m", "radio_engine.cli", *argv],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def replay_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two real 30Music events, for `radio-engine replay`."""
    path = tmp_path_factory.mktemp("replay") / "events.csv"
    with open(EVENTS_CSV) as f:
        path.write_text("".join(next(f) for _ in range(3)))
    return path


COMMANDS = {
    "send": ["send", "--listener", "l1", "--track", "t1", "--event", "play"],
    "tail": ["tail", "--listener", "l1", "--timeout", "5"],
    "dead-letters": ["dead-letters"],
    "replay": ["replay", "CSV"],
    "worker": ["worker", "--port", "PORT"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_wrong_password_is_one_clear_line(
    sasl_settings: Settings, command: str, replay_csv: Path
) -> None:
    wrong = f"wrong-{secrets.token_hex(6)}"
    settings = sasl_settings.with_overrides(kafka_password=wrong, kafka_password_file="")
    argv = [str(replay_csv) if a == "CSV" else str(free_port()) if a == "PORT" else a
            for a in COMMANDS[command]]  # fmt: skip
    done = radio_engine(settings, *argv)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"radio-engine {command}: SASL SCRAM-SHA-512 authentication as ")
    assert f"user 'radio' failed at {sasl_settings.broker}: wrong user name or password" in lines[0]
    assert wrong not in done.stderr + done.stdout and PASSWORD not in done.stderr + done.stdout


def test_an_untrusted_certificate_and_a_missing_client_certificate_are_one_line(
    sasl_settings: Settings, pki: Pki
) -> None:
    argv = COMMANDS["send"]
    untrusted = radio_engine(
        sasl_settings.with_overrides(kafka_ssl_ca_file=str(pki.other_ca)), *argv
    )
    assert untrusted.returncode == 2
    assert untrusted.stderr.strip().splitlines() == [
        f"radio-engine send: TLS to the Kafka broker at {sasl_settings.broker} failed: its "
        "certificate is not trusted (self-signed certificate in certificate chain); checked "
        f"against RADIO_KAFKA_SSL_CA_FILE={pki.other_ca}"
    ]
    anonymous = sasl_settings.with_overrides(kafka_ssl_cert_file="", kafka_ssl_key_file="")
    refused = radio_engine(anonymous, *argv)
    assert refused.returncode == 2
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith(
        f"radio-engine send: TLS handshake with the Kafka broker at {sasl_settings.broker} failed"
    )


def test_scram_sha_256_reaches_the_same_broker(sasl_settings: Settings) -> None:
    settings = sasl_settings.with_overrides(kafka_sasl_mechanism="SCRAM-SHA-256")
    assert asyncio.run(connection_problem(settings)) is None
    plain = sasl_settings.with_overrides(kafka_security_protocol="PLAINTEXT")
    assert "does that listener speak" in (asyncio.run(connection_problem(plain)) or "")


async def _topic_configs(settings: Settings, topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.broker, **security_kwargs(settings))
    await admin.start()
    try:
        [resp] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        return {entry[0]: entry[1] for entry in resp.resources[0][4]}
    finally:
        await admin.close()


def test_topics_take_the_replication_factor_of_the_settings(sasl_settings: Settings) -> None:
    created = sasl_settings.for_app(f"rf-{time.time_ns() % 10**6}")
    assert created.topic_listens in asyncio.run(ensure_topics(created))
    configs = asyncio.run(_topic_configs(created, created.topic_listens))
    assert configs["min.insync.replicas"] == "1"
    # one broker cannot hold two replicas: the factor reaches the broker, which refuses it
    two = sasl_settings.for_app(f"rf2-{time.time_ns() % 10**6}", topic_replication_factor=2)
    with pytest.raises(TopicCreationFailed, match="INVALID_REPLICATION_FACTOR"):
        asyncio.run(ensure_topics(two))


def test_a_worker_asking_for_more_replicas_than_brokers_says_so_in_one_line(
    sasl_settings: Settings, slice_model: Path
) -> None:
    settings = sasl_settings.for_app(
        f"rf3-{time.time_ns() % 10**6}",
        topic_replication_factor=3,
        model_dir=str(slice_model),
        worker_port=free_port(),
    )
    done = radio_engine(settings, "worker")
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"radio-engine worker: the broker refused to create {settings.app_id}.")
    assert "INVALID_REPLICATION_FACTOR" in last and "Traceback" not in done.stderr
