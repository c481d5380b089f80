"""Operating the worker on the real broker: /health, consumer lag, the Grafana dashboard and
the alert rules against what the worker exports, and a real Prometheus scraping a worker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from radio_engine.broker.launcher import free_port
from radio_engine.broker.topics import ensure_topics_sync
from radio_engine.player.replay import replay_events
from radio_engine.settings import Settings
from tests.integration.conftest import (
    WorkerProcess,
    send_raw,
    start_worker,
    wait_for_metric,
    worker_settings,
)

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "radio-engine.json"
PROMETHEUS_DIR = DEPLOY / "prometheus"
#: series Prometheus makes itself for every target (not exported by the worker)
SCRAPE_SERIES = {"up"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or"}
PROMQL_WORDS |= {"unless", "bool", "offset", "inf", "nan"}


def health(worker: WorkerProcess, query: str = "") -> tuple[int, dict[str, Any]]:
    """Status code and JSON body of /health (503 answers carry a body too)."""
    try:
        with urllib.request.urlopen(worker.url("/health" + query), timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_ready(worker: WorkerProcess, timeout: float = 90) -> dict[str, Any]:
    """Poll /health?ready=1 until it answers 200; returns the body."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            status, body = health(worker, "?ready=1")
            if status == 200:
                return body
        time.sleep(0.3)
    raise AssertionError(f"worker not ready in {timeout} s; last /health: {body}")


@pytest.fixture(scope="module")
def busy_worker(
    kafka_settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
    slice_model: Path,
    slice_events: list[dict[str, Any]],
) -> Iterator[WorkerProcess]:
    """A ready worker that has applied the 1,200 slice events and dead-lettered two inputs."""
    tmp = tmp_path_factory.mktemp("operate")
    settings = worker_settings(kafka_settings, tmp, slice_model, f"op-{time.time_ns() % 10**6}")
    worker = start_worker(settings, tmp / "worker.log")
    try:
        wait_ready(worker)
        asyncio.run(replay_events(settings, slice_events, progress=False))
        send_raw(settings, settings.topic_listens, [(b"x", b"not json"), (b"y", b"{}")])
        wait_for_metric(worker, 'radio_listen_events_total{event="play",outcome="applied"} 1200.0')
        yield worker
    finally:
        worker.stop()


# -- /health ------------------------------------------------------------------------------------


def test_health_live_and_ready_on_a_running_worker(busy_worker: WorkerProcess) -> None:
    live_status, live = health(busy_worker)
    ready_status, ready = health(busy_worker, "?ready=1")
    assert (live_status, ready_status) == (200, 200)
    assert live["check"] == "live" and ready["check"] == "ready"
    for body in (live, ready):
        assert body["status"] == "ok" and body["reason"] is None
        assert body["consumer_started"] and body["broker_connected"]
        assert body["generation"] > 0 and body["assigned_partitions"] > 0
        assert not body["rebalancing"] and not body["recovering"]
        assert body["listeners_held"] == 60


# -- the dashboard and the alert rules query only what the worker exports ------------------------


def promql_metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression, loosely: strings, label matchers, ranges, grouping
    clauses, function calls, keywords and Grafana variables removed; what is left is names."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\$\{?\w+\}?", "", expr)
    expr = re.sub(r"\{[^}]*\}", "{}", expr)
    expr = re.sub(r"\[[^\]]*\]", "[]", expr)
    words = r"by|without|on|ignoring|group_left|group_right"
    expr = re.sub(rf"\b({words})\s*\([^)]*\)", " ", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.:])[A-Za-z_:][\w:]*", expr):
        rest = expr[match.end() :].lstrip()
        word = match.group()
        if rest.startswith("(") or word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    for variable in dashboard["templating"]["list"]:
        inner = re.fullmatch(r"label_values\((.*),\s*\w+\)", variable["query"]["query"])
        assert inner, variable["query"]
        exprs.append(inner.group(1))
    return exprs


def alert_exprs() -> list[str]:
    groups = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def exported_names(exposition: str) -> set[str]:
    """Sample names the exposition can carry: each family's samples, even before it has any."""
    names = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names.add(name)
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_promql_name_extraction() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (instance, le) (rate(a_bucket{x="y{"}[5m]))) > 2 '
        "unless on (instance) b_total offset 5m and sum without (job) (c) / d"
    )
    assert promql_metric_names(expr) == {"a_bucket", "b_total", "c", "d"}


def test_dashboard_and_alerts_use_only_exported_metrics(busy_worker: WorkerProcess) -> None:
    exposition = busy_worker.get("/metrics").decode()
    exported = exported_names(exposition) | SCRAPE_SERIES
    used: dict[str, set[str]] = {}
    for source, exprs in (("dashboard", dashboard_exprs()), ("alerts", alert_exprs())):
        for expr in exprs:
            for name in promql_metric_names(expr):
                used.setdefault(name, set()).add(source)
    missing = {name: sources for name, sources in used.items() if name not in exported}
    assert not missing, f"queried but not exported by the worker: {missing}"
    # the check covers what the issue asks the dashboard to show
    for name in [
        "radio_listen_events_total",
        "radio_queues_published_total",
        "radio_dead_letters_total",
        "radio_event_to_queue_seconds_bucket",
        "radio_listen_batch_size_events_bucket",
        "radio_listen_batch_seconds_bucket",
        "radio_gru_step_seconds_sum",
        "radio_selector_seconds_sum",
        "radio_catalog_tracks",
        "radio_listeners_held",
        "radio_consumer_lag_records",
    ]:
        assert "dashboard" in used.get(name, set()), name
    # and the exporter really has samples behind the main ones after real traffic
    for sample in [
        'radio_listen_events_total{event="play",outcome="applied"} 1200.0',
        'radio_listen_events_total{event="unknown",outcome="dead_letter"} 2.0',
    ]:
        assert sample in exposition.splitlines() or sample.split("{")[0] in exposition


# -- a real Prometheus scraping the worker ---------------------------------------------------------


@contextlib.contextmanager
def running_prometheus(tmp: Path, target: str) -> Iterator[str]:
    """Debian's prometheus on a free port, with the shipped config (only the target rewritten)
    and the shipped rules next to it; yields its base URL."""
    exe = shutil.which("prometheus")
    assert exe, "prometheus is missing: scripts/test.sh installs Debian's prometheus package"
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            static["targets"] = [target]
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    for rule_file in config["rule_files"]:
        shutil.copy(PROMETHEUS_DIR / rule_file, tmp / rule_file)
    port = free_port()
    log = open(tmp / "prometheus.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [
            exe,
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def prom_get(base: str, path: str, **params: str) -> Any:
    url = f"{base}{path}?{urllib.parse.urlencode(params)}" if params else base + path
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]


def test_prometheus_scrapes_the_worker_and_loads_the_rules(
    busy_worker: WorkerProcess, tmp_path: Path
) -> None:
    target = f"127.0.0.1:{busy_worker.settings.worker_port}"
    query = 'radio_listen_events_total{job="radio-engine",event="play",outcome="applied"}'
    with running_prometheus(tmp_path, target) as base:
        deadline = time.monotonic() + 60
        result: list[Any] = []
        while time.monotonic() < deadline and not result:
            with contextlib.suppress(OSError):
                result = prom_get(base, "/api/v1/query", query=query)["result"]
            if not result:
                time.sleep(0.5)
        log = (tmp_path / "prometheus.log").read_text(errors="replace")[-2000:]
        assert result, f"no engine series in Prometheus within 60 s:\n{log}"
        assert result[0]["metric"]["instance"] == target
        assert float(result[0]["value"][1]) == 1200.0
        up = prom_get(base, "/api/v1/query", query='up{job="radio-engine"}')["result"]
        assert [(s["metric"]["instance"], s["value"][1]) for s in up] == [(target, "1")]
        lag = prom_get(base, "/api/v1/query", query="radio_consumer_lag_records")["result"]
        listens = [s for s in lag if s["metric"]["topic"] == busy_worker.settings.topic_listens]
        assert listens and all(s["value"][1] == "0" for s in listens)
        groups = prom_get(base, "/api/v1/rules")["groups"]
        loaded = {r["name"]: r for g in groups for r in g["rules"]}
        shipped = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())["groups"]
        assert set(loaded) == {r["alert"] for g in shipped for r in g["rules"]}
        assert all(r["type"] == "alerting" and r["health"] != "err" for r in loaded.values())
        # every dashboard query parses and runs on this Prometheus (Grafana variables filled in)
        for expr in dashboard_exprs():
            runnable = expr.replace("$__rate_interval", "1m").replace("$instance", ".*")
            prom_get(base, "/api/v1/query", query=runnable)


# -- consumer lag ---------------------------------------------------------------------------------


def lag_by_partition(worker: WorkerProcess, topic: str) -> dict[str, float]:
    """The worker's radio_consumer_lag_records samples for one topic, by partition."""
    out = {}
    pattern = re.compile(r'radio_consumer_lag_records\{partition="(\d+)",topic="([^"]+)"\} (\S+)')
    for line in worker.get("/metrics").decode().splitlines():
        found = pattern.fullmatch(line)
        if found and found.group(2) == topic:
            out[found.group(1)] = float(found.group(3))
    return out


def test_consumer_lag_rises_then_drains_to_zero(
    kafka_settings: Settings,
    tmp_path: Path,
    slice_model: Path,
    slice_events: list[dict[str, Any]],
) -> None:
    settings = worker_settings(
        kafka_settings, tmp_path, slice_model, f"lag-{time.time_ns() % 10**6}", batch_max=4
    )
    copies = 2
    events = [
        {**e, "listener_id": f"{e['listener_id']}-{k}"} for k in range(copies) for e in slice_events
    ]
    # the backlog is on the broker before any worker of this group exists
    ensure_topics_sync(settings)
    asyncio.run(replay_events(settings, events, progress=False))
    started = time.monotonic()
    worker = start_worker(settings, tmp_path / "worker.log")
    try:
        seen: list[tuple[float, float]] = []
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            lags = lag_by_partition(worker, settings.topic_listens)
            if lags:
                seen.append((time.monotonic() - started, sum(lags.values())))
                if len(lags) == settings.topic_partitions and seen[-1][1] == 0 and seen[0][1]:
                    break
            time.sleep(0.2)
        peak = max((total for _, total in seen), default=0)
        assert peak > 0, f"lag never above 0: {seen[:20]}"
        assert seen[-1][1] == 0, f"lag never drained: {seen[-5:]}"
        assert peak <= len(events)
        print(f"lag samples (s since start, records behind): {seen[:3]} ... {seen[-2:]}")
        wait_for_metric(
            worker, f'radio_listen_events_total{{event="play",outcome="applied"}} {len(events)}.0'
        )
        # every listens partition is assigned to this one worker and reports 0 now
        assert lag_by_partition(worker, settings.topic_listens) == {
            str(p): 0.0 for p in range(settings.topic_partitions)
        }
    finally:
        worker.stop()
