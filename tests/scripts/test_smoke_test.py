"""smoke_test against a real service, in-process through main([...])."""

from __future__ import annotations

import json

import pytest

from scripts import smoke_test
from scripts.toolkit.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from scripts.toolkit.processes import ManagedProcess, free_port
from tests.support.service import ADMIN_TOKEN, StartApp

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def service(start_module_app: StartApp) -> ManagedProcess:
    """One service for the module."""
    return start_module_app(version="smoke-sha")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    """main([...]) with JSON output."""
    code = smoke_test.main([*args, "--output", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_a_healthy_service_passes_every_check(
    service: ManagedProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(capsys, "--url", service.url, "--expect-version", "smoke-sha")
    assert code == EXIT_OK
    checks = {c["check"]: c for c in out["data"]["checks"]}
    assert {"healthz", "readyz", "version"} <= set(checks)
    assert sum(name.startswith("answer ") for name in checks) == 5
    assert all(c["ok"] for c in checks.values())


def test_the_wrong_version_fails(
    service: ManagedProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(capsys, "--url", service.url, "--expect-version", "other-sha")
    assert code == EXIT_FAILED
    failed = [c for c in out["data"]["checks"] if not c["ok"]]
    assert [c["check"] for c in failed] == ["version"]
    assert "expected other-sha" in failed[0]["detail"]


def test_pinning_needs_the_token_and_uses_it(
    service: ManagedProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(capsys, "--url", service.url, "--prompt-version", "v1")
    assert code == EXIT_USAGE
    assert "--admin-token" in out["errors"][0]
    code, out = run(
        capsys,
        "--url",
        service.url,
        "--prompt-version",
        "v1",
        "--admin-token",
        "wrong-token-0123456789",
    )
    assert code == EXIT_FAILED
    assert any("403" in c["detail"] for c in out["data"]["checks"])
    code, out = run(
        capsys, "--url", service.url, "--prompt-version", "v1", "--admin-token", ADMIN_TOKEN
    )
    assert code == EXIT_OK
    answers = [c for c in out["data"]["checks"] if c["check"].startswith("answer ")]
    assert all(", v1," in c["detail"] for c in answers)


def test_an_unreachable_service_fails_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, out = run(capsys, "--url", url)
    assert code == EXIT_FAILED
    assert out["errors"][0].startswith(f"cannot reach {url}")
