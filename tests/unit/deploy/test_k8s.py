"""deploy/k8s: every manifest valid against the Kubernetes API schemas (offline, from the
kubernetes-validate package), and the manifests agree with each other and with the engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from radio_engine.settings import Settings
from tests.unit.deploy.conftest import DEPLOY

K8S = DEPLOY / "k8s"
#: the Kubernetes version whose schemas the manifests are checked against
K8S_VERSION = "1.30"


def manifests() -> list[tuple[Path, dict[str, Any]]]:
    """Every resource in deploy/k8s/*.yaml, with its file (the kustomization excluded)."""
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") != "Kustomization":
                out.append((path, doc))
    return out


def one(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        d for _, d in manifests() if d["kind"] == kind and name in (None, d["metadata"]["name"])
    ]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


@pytest.mark.parametrize(
    "path, doc", manifests(), ids=lambda v: v.name if isinstance(v, Path) else v["kind"]
)
def test_manifest_is_valid_against_the_api_schema(path: Path, doc: dict[str, Any]) -> None:
    # strict: unknown fields (a typo such as `readinesProbe`) fail too
    assert kubernetes_validate.validate(doc, K8S_VERSION, strict=True) == K8S_VERSION


def test_the_validator_rejects_a_broken_manifest() -> None:
    """The schema check has teeth: a misspelt field and a wrong type are both refused."""
    doc = one("StatefulSet")
    container = doc["spec"]["template"]["spec"]["containers"][0]
    bad = {**container, "readinesProbe": container["readinessProbe"]}
    broken = {**doc, "spec": {**doc["spec"], "replicas": "two"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)
    typo = yaml.safe_load(yaml.safe_dump(doc))
    typo["spec"]["template"]["spec"]["containers"][0] = bad
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, K8S_VERSION, strict=True)


def test_kustomization_lists_every_manifest_file() -> None:
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(listed) == sorted(files)


def test_statefulset_services_and_budget_agree() -> None:
    sts = one("StatefulSet")
    pod_labels = sts["spec"]["template"]["metadata"]["labels"]
    selects = sts["spec"]["selector"]["matchLabels"]
    assert selects.items() <= pod_labels.items()
    headless = one("Service", sts["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    services = [d for _, d in manifests() if d["kind"] == "Service"]
    assert len(services) == 2 and any(s["spec"].get("clusterIP") != "None" for s in services)
    container = sts["spec"]["template"]["spec"]["containers"][0]
    port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
    for service in services:
        assert service["spec"]["selector"].items() <= pod_labels.items()
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names
    pdb = one("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["spec"]["maxUnavailable"] < sts["spec"]["replicas"]
    # the table state lives on a per-pod claim mounted where the worker keeps its data dir
    claims = {t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]}
    volumes = {v["name"] for v in sts["spec"]["template"]["spec"].get("volumes", [])}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert set(mounts) <= claims | volumes
    env = settings_env()
    data_dir = Path(env["RADIO_WORKER_DATA_DIR"])
    claimed = [Path(mounts[name]) for name in claims]
    assert any(data_dir == c or c in data_dir.parents for c in claimed), (data_dir, claimed)
    assert port_names["http"] == int(env["RADIO_WORKER_PORT"])
    annotations = sts["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == env["RADIO_WORKER_PORT"]


def test_probes_use_health_on_the_worker_port() -> None:
    container = one("StatefulSet")["spec"]["template"]["spec"]["containers"][0]
    probes = {k: container[k]["httpGet"] for k in ("startupProbe", "livenessProbe")}
    probes["readinessProbe"] = container["readinessProbe"]["httpGet"]
    assert probes["livenessProbe"]["path"] == "/health"
    assert probes["startupProbe"]["path"] == "/health"
    assert probes["readinessProbe"]["path"] == "/health?ready=1"
    assert {p["port"] for p in probes.values()} == {"http"}


def settings_env() -> dict[str, str]:
    """The RADIO_* environment a worker pod gets from the ConfigMap and the Secret."""
    config = one("ConfigMap", "radio-engine-settings")["data"]
    secret = one("Secret", "radio-engine-kafka")["stringData"]
    return {**config, "RADIO_BROKER": secret["RADIO_BROKER"]}


def test_env_names_are_real_settings_and_values_parse(setting_names: set[str]) -> None:
    sts = one("StatefulSet")
    container = sts["spec"]["template"]["spec"]["containers"][0]
    config = one("ConfigMap", container["envFrom"][0]["configMapRef"]["name"])
    assert set(config["data"]) <= setting_names
    for item in container["env"]:
        assert item["name"] == "POD_NAME" or item["name"] in setting_names, item["name"]
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            assert ref["key"] in one("Secret", ref["name"])["stringData"]
    # the values parse into a Settings object (types included)
    parsed = Settings.from_env(settings_env())
    assert parsed.worker_bind == "0.0.0.0" and parsed.worker_port == 6066
    assert parsed.model_path == Path("/models/current")
    host = next(e["value"] for e in container["env"] if e["name"] == "RADIO_WORKER_HOST")
    assert host == f"$(POD_NAME).{sts['spec']['serviceName']}"


def test_secret_files_are_mounted_where_the_file_settings_point() -> None:
    """Every RADIO_*_FILE of the ConfigMap is a file of a mounted Secret whose key exists; the
    password and the token are files, never environment variables or ConfigMap values."""
    sts = one("StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    container = pod["containers"][0]
    config = one("ConfigMap", "radio-engine-settings")["data"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    files: dict[Path, tuple[str, str]] = {}  # mounted path -> (secret, key)
    for volume in pod["volumes"]:
        for source in volume.get("projected", {}).get("sources", []):
            mount = mounts[volume["name"]]
            assert mount["readOnly"] is True
            for item in source["secret"]["items"]:
                files[Path(mount["mountPath"]) / item["path"]] = (
                    source["secret"]["name"],
                    item["key"],
                )
            assert volume["projected"]["defaultMode"] == 0o440  # the worker's group reads them
    file_settings = {k: v for k, v in config.items() if k.endswith("_FILE")}
    assert set(file_settings) == {
        "RADIO_KAFKA_PASSWORD_FILE",
        "RADIO_KAFKA_SSL_CA_FILE",
        "RADIO_HTTP_TOKEN_FILE",
    }
    for name, path in file_settings.items():
        assert Path(path) in files, name
        secret, key = files[Path(path)]
        assert key in one("Secret", secret)["stringData"], (name, secret, key)
    env_names = {e["name"] for e in container["env"]} | set(config)
    assert not env_names & {"RADIO_KAFKA_PASSWORD", "RADIO_HTTP_TOKEN"}
    parsed = Settings.from_env(settings_env())
    assert parsed.kafka_security_protocol == "SASL_SSL" and parsed.topic_replication_factor == 3
    assert parsed.kafka_sasl_mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512")
    # the probes and the scrape reach open pages (no token): see README, "Security"
    annotations = sts["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == "/metrics"
