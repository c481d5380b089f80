"""deploy/compose.yaml and deploy/Dockerfile checked for internal consistency: services it
names exist, files it mounts are in the repository, env names are real settings, and the
Prometheus scrape targets are exactly the worker services on their ports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from radio_engine.settings import Settings
from tests.unit.deploy.conftest import DEPLOY, REPO

ENGINE_IMAGE = "radio-engine:local"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def workers(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services that run the image's default command (`radio-engine worker`)."""
    return {
        name: s
        for name, s in services(compose).items()
        if s.get("image") == ENGINE_IMAGE and "entrypoint" not in s and "command" not in s
    }


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source of every volume of a service."""
    out = {}
    for spec in service.get("volumes", []):
        # a source may be ${VAR:-default}, which has a colon of its own
        found = re.fullmatch(r"(\$\{[^}]*\}|[^:]+):([^:]+)(?::(?:ro|rw))?", spec)
        assert found, spec
        out[found.group(2)] = found.group(1)
    return out


def test_references_resolve(compose: dict[str, Any]) -> None:
    names = set(services(compose))
    assert {"kafka", "topics", "prometheus", "grafana"} <= names
    assert len(workers(compose)) == 2
    declared = set(compose.get("volumes") or {})
    used = set()
    for name, service in services(compose).items():
        assert set(service.get("depends_on", [])) <= names - {name}, name
        for target, source in mounts(service).items():
            if source.startswith("."):
                assert (DEPLOY / source).resolve().exists(), f"{name}: {source} not in the repo"
                assert REPO in (DEPLOY / source).resolve().parents
            elif source.startswith("${"):
                # the one host path: the model directory, mounted where RADIO_MODEL_DIR says
                assert target == service["environment"]["RADIO_MODEL_DIR"], name
            else:
                used.add(source)
    assert used == declared
    for service in services(compose).values():
        if "build" in service:
            assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).exists()


def test_engine_env_names_are_settings_and_parse(
    compose: dict[str, Any], setting_names: set[str]
) -> None:
    engine = {n: s for n, s in services(compose).items() if s.get("image") == ENGINE_IMAGE}
    assert set(engine) == set(workers(compose)) | {"topics"}
    for name, service in engine.items():
        env = {k: str(v) for k, v in service["environment"].items()}
        assert set(env) <= setting_names, f"{name}: {set(env) - setting_names}"
        Settings.from_env(env)  # every value parses into its setting's type
    hosts = [s["environment"]["RADIO_WORKER_HOST"] for s in workers(compose).values()]
    assert hosts == list(workers(compose))  # each advertises its own service name
    names = [s["environment"]["RADIO_WORKER_NAME"] for s in workers(compose).values()]
    assert names == list(workers(compose))  # static members: a restart rejoins without a rebalance
    assert all(s["hostname"] == n for n, s in workers(compose).items())


def test_workers_reach_the_kafka_service_in_kraft_mode(compose: dict[str, Any]) -> None:
    kafka = services(compose)["kafka"]
    assert kafka["image"] == f"apache/kafka:{Settings().kafka_version}"
    env = kafka["environment"]
    assert "controller" in env["KAFKA_PROCESS_ROLES"] and "broker" in env["KAFKA_PROCESS_ROLES"]
    assert not any("ZOOKEEPER" in k for k in env)
    advertised = dict(
        reversed(listener.split("://")) for listener in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    )
    internal = advertised[f"kafka:{9092}"]
    assert internal == env["KAFKA_INTER_BROKER_LISTENER_NAME"]
    for name in [*workers(compose), "topics"]:
        assert services(compose)[name]["environment"]["RADIO_BROKER"] in advertised, name
    topics = services(compose)["topics"]
    assert "ensure_topics_sync(Settings.from_env())" in topics["command"][0]
    for worker in workers(compose).values():
        assert worker["depends_on"]["topics"]["condition"] == "service_completed_successfully"
        assert (
            worker["environment"]["RADIO_TOPIC_PARTITIONS"]
            == (topics["environment"]["RADIO_TOPIC_PARTITIONS"])
        )


def test_prometheus_scrapes_exactly_the_workers_and_loads_the_rules(
    compose: dict[str, Any],
) -> None:
    prometheus = services(compose)["prometheus"]
    files = mounts(prometheus)
    config_path = next(a.split("=", 1)[1] for a in prometheus["command"] if "config.file" in a)
    config_source = (DEPLOY / files[config_path]).resolve()
    assert config_source == DEPLOY / "prometheus" / "prometheus.yml"
    config = yaml.safe_load(config_source.read_text())
    for rule_file in config["rule_files"]:
        in_container = str(Path(config_path).parent / rule_file)
        assert (DEPLOY / files[in_container]).resolve() == config_source.parent / rule_file
    (job,) = config["scrape_configs"]
    targets = {t for sc in job["static_configs"] for t in sc["targets"]}
    expected = {
        f"{name}:{Settings.from_env({k: str(v) for k, v in s['environment'].items()}).worker_port}"
        for name, s in workers(compose).items()
    }
    assert targets == expected
    for worker in workers(compose).values():  # the port each worker publishes is its own
        port = str(worker["environment"]["RADIO_WORKER_PORT"])
        assert all(p.endswith(f":{port}") for p in worker["ports"])
        assert worker["environment"]["RADIO_WORKER_BIND"] == "0.0.0.0"


def test_grafana_gets_the_datasource_and_the_dashboard(compose: dict[str, Any]) -> None:
    grafana = services(compose)["grafana"]
    files = mounts(grafana)
    provisioning = (DEPLOY / files["/etc/grafana/provisioning"]).resolve()
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    prometheus_ports = {p.split(":")[-1] for p in services(compose)["prometheus"]["ports"]}
    host, port = re.fullmatch(r"http://([\w-]+):(\d+)", source["url"]).groups()  # type: ignore[union-attr]
    assert host in services(compose) and host in grafana["depends_on"]
    assert port in prometheus_ports
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "radio-engine.yml").read_text())[
        "providers"
    ]
    dashboards = {t: s for t, s in files.items() if t.startswith(provider["options"]["path"])}
    assert [Path(s).name for s in dashboards.values()] == ["radio-engine.json"]
    dashboard = json.loads((DEPLOY / next(iter(dashboards.values()))).read_text())
    uids = {p["datasource"]["uid"] for p in dashboard["panels"] for p in [p, *p["targets"]]}
    assert uids == {source["uid"]}


def test_dockerfile_runs_the_worker_as_non_root_without_torch(setting_names: set[str]) -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    env_names = set(re.findall(r"\b(RADIO_[A-Z_]+)=", text))
    assert env_names and env_names <= setting_names
    env = dict(re.findall(r"\b(RADIO_[A-Z_]+)=(\S+)", text))
    settings = Settings.from_env(env)
    assert f"EXPOSE {settings.worker_port}" in text
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and not user[-1].startswith(("0", "root"))
    installs = re.findall(r"pip (?:install|wheel)[^\n]*", text)
    assert installs and not any("[" in line or "torch" in line for line in installs)
    # the default model build arg and every COPY source exist and pass the .dockerignore
    default_model = re.search(r"ARG MODEL_DIR=(\S+)", text).group(1)  # type: ignore[union-attr]
    assert (REPO / default_model).is_dir()
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    kept = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for source in ["pyproject.toml", "README.md", "radio_engine", default_model]:
        assert (REPO / source).exists() and source in kept, source
    assert settings.model_dir in text and settings.worker_bind == "0.0.0.0"


def test_the_http_token_comes_from_the_shell_and_topics_match_the_broker(
    compose: dict[str, Any],
) -> None:
    """No token is written in the file: it is interpolated from the environment of `docker
    compose up` (empty: open); the one-node PLAINTEXT broker gets one-replica topics."""
    for name in [*workers(compose), "topics"]:
        env = services(compose)[name]["environment"]
        assert env["RADIO_HTTP_TOKEN"] == "${RADIO_HTTP_TOKEN:-}", name
        assert "RADIO_HTTP_TOKEN_FILE" not in env and "RADIO_KAFKA_PASSWORD" not in env
        assert env["RADIO_KAFKA_SECURITY_PROTOCOL"] == "PLAINTEXT"
        assert env["RADIO_TOPIC_REPLICATION_FACTOR"] == "1"
    kafka = services(compose)["kafka"]["environment"]
    assert "SASL" not in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    assert kafka["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
