"""deploy/prometheus checked by Prometheus's own promtool: config, rules and rule unit tests."""

from __future__ import annotations

import shutil
import subprocess

import yaml

from tests.unit.deploy.conftest import DEPLOY

PROM = DEPLOY / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run promtool in deploy/prometheus; fail (not skip) when it is missing."""
    exe = shutil.which("promtool")
    assert exe, "promtool is missing: scripts/test.sh installs Debian's prometheus package"
    return subprocess.run(
        [exe, *args], cwd=PROM, capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_checks_config_and_rules() -> None:
    config = promtool("check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr
    rules = promtool("check", "rules", "alerts.yml")
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS: 5 rules found" in rules.stdout + rules.stderr


def test_promtool_rule_unit_tests_pass() -> None:
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    alerts = {
        rule["alert"]
        for group in yaml.safe_load((PROM / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    }
    assert alerts == {
        "RadioWorkerDown",
        "RadioConsumerLagGrowing",
        "RadioEventToQueueP99High",
        "RadioDeadLetterRateHigh",
        "RadioNoQueuesPublished",
    }
    cases = [
        case
        for test in yaml.safe_load((PROM / "alerts_test.yml").read_text())["tests"]
        for case in test["alert_rule_test"]
    ]
    for alert in alerts:
        mine = [c for c in cases if c["alertname"] == alert]
        assert any(c["exp_alerts"] for c in mine), f"{alert}: no case where it fires"
        assert any(not c["exp_alerts"] for c in mine), f"{alert}: no case where it stays quiet"
    # each firing case leaves at least one input instance out: the one that must not fire
    tests = yaml.safe_load((PROM / "alerts_test.yml").read_text())["tests"]
    for test in tests:
        instances = {s["series"].split('instance="')[1].split('"')[0] for s in test["input_series"]}
        for case in test["alert_rule_test"]:
            fired = {a["exp_labels"]["instance"] for a in case["exp_alerts"]}
            assert fired < instances or not fired, test["name"]
