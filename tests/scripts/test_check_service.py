"""`python -m scripts.check_service` against real processes: the reference service, the foreign
service of tests/support, and a foreign service that breaks one item of the contract."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts import check_service
from scripts.toolkit.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from scripts.toolkit.policy import DEFAULT_POLICY
from scripts.toolkit.processes import ManagedProcess, free_port, python_module
from tests.support.service import ADMIN_TOKEN, REPO, StartApp

pytestmark = pytest.mark.integration

StartForeign = Callable[..., ManagedProcess]


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's policy; the check reads only its metrics, so the rest is left out."""
    data = yaml.safe_load(DEFAULT_POLICY.read_text(encoding="utf-8"))
    data.pop("evaluation", None)
    path = tmp_path_factory.mktemp("policy") / "policy.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def start_foreign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartForeign]:
    """Start the foreign service with the APP_* settings the platform passes (and `extra`)."""
    started: list[ManagedProcess] = []

    def start(**extra: str) -> ManagedProcess:
        workdir = tmp_path_factory.mktemp("foreign")
        shutil.copytree(REPO / "registry", workdir / "registry")
        port = free_port()
        env = {
            "APP_HOST": "127.0.0.1",
            "APP_PORT": str(port),
            "APP_TRACK": "stable",
            "APP_VERSION": "foreign-1",
            "APP_GIT_SHA": "0" * 40,
            "APP_REGISTRY_DIR": str(workdir / "registry"),
            "APP_REGISTRY_RELOAD_SECONDS": "0.2",
            "APP_ADMIN_TOKEN": ADMIN_TOKEN,
            **extra,
        }
        proc = python_module(
            f"foreign-{port}", "tests.support.foreign_service", port=port, env=env,
            log_dir=workdir, cwd=REPO,
        )  # fmt: skip
        started.append(proc.start())
        proc.wait_http("/readyz")
        return proc

    yield start
    for proc in started:
        proc.stop()


def check(
    url: str, policy: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, dict[str, Any]]:
    """Run the command in-process with `--output json`; exit code and envelope."""
    code = check_service.main(["--url", url, "--policy", str(policy), "--output", "json", *extra])
    return code, json.loads(capsys.readouterr().out)


def results(envelope: dict[str, Any]) -> dict[str, str]:
    """Item id -> pass | fail | skip."""
    return {item["id"]: item["result"] for item in envelope["data"]["items"]}


def test_the_reference_service_honours_the_contract(
    start_module_app: StartApp, policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = start_module_app()
    code, out = check(app.url, policy, capsys, "--admin-token", ADMIN_TOKEN)
    assert code == EXIT_OK, out
    assert set(results(out).values()) == {"pass"}
    assert {"health.ready", "pin.served", "metrics.app_answers_total", "policy.error_rate"} <= set(
        results(out)
    )


def test_the_foreign_service_honours_the_contract(
    start_foreign: StartForeign, policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = start_foreign().url
    code, out = check(url, policy, capsys, "--admin-token", ADMIN_TOKEN)
    assert code == EXIT_OK, out
    assert set(results(out).values()) == {"pass"}
    # Without a token, pinning cannot be checked: skipped, never passed.
    code, out = check(url, policy, capsys)
    assert code == EXIT_OK, out
    assert results(out)["pin.served"] == "skip"


def test_a_service_without_the_track_label_fails_and_names_the_items(
    start_foreign: StartForeign, policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = start_foreign(FOREIGN_DROP_LABEL="track").url
    code, out = check(url, policy, capsys, "--admin-token", ADMIN_TOKEN)
    assert code == EXIT_FAILED, out
    assert out["status"] == "failed"
    failed = {
        item["id"]: item["reason"] for item in out["data"]["items"] if item["result"] == "fail"
    }
    assert "lacks the label track" in failed["metrics.app_answers_total"]
    assert "policy.error_rate" in failed
    assert results(out)["answer.fields"] == "pass"
    assert any(error.startswith("metrics.app_answers_total: ") for error in out["errors"])


def test_an_unreachable_service_is_never_a_pass(
    policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = check(f"http://127.0.0.1:{free_port()}", policy, capsys)
    assert code == EXIT_FAILED, out
    assert results(out) == {"health.live": "fail"}


def test_a_bad_url_is_a_usage_error(policy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check_service.main(["--url", "127.0.0.1:8000", "--policy", str(policy)]) == EXIT_USAGE
    assert "not an http(s) URL" in capsys.readouterr().err
    assert check_service.main(["--policy", str(policy)]) == EXIT_USAGE
    assert "--url" in capsys.readouterr().err
