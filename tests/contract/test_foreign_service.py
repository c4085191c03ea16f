"""The foreign service (tests/support/foreign_service.py: aiohttp, nothing of `app/`) rolled out
by the toolkit on the local platform: a code canary and a prompt canary, both promoted under
load; and it drains on SIGTERM as the contract asks. The template's promise, proven."""

from __future__ import annotations

import json
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scripts import monitor_canary, promote
from scripts.toolkit import registry_ops
from scripts.toolkit.cli import EXIT_OK
from scripts.toolkit.platform import tracks
from scripts.toolkit.platform.state import StateStore
from scripts.toolkit.processes import free_port, python_module
from scripts.toolkit.traffic.local import LocalBackend
from tests.support.load import Load
from tests.support.platform import fast_policy, running_platform
from tests.support.polling import poll_until
from tests.support.service import REPO

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
FOREIGN = [sys.executable, "-m", "tests.support.foreign_service"]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The local platform running the foreign service on every track (no Prometheus)."""
    with running_platform(tmp_path_factory.mktemp("platform"), service_command=FOREIGN) as path:
        yield path


@pytest.fixture(scope="module")
def load(platform: Path) -> Iterator[Load]:
    """Steady load on the router for the whole module."""
    with Load(StateStore(platform).read().router_url, workers=4, max_seconds=300) as running:
        yield running


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's metrics on a fast clock with few samples: decides in seconds."""
    return fast_policy(tmp_path_factory.mktemp("policy") / "policy.yaml")


def monitor(
    platform: Path, policy: Path, state: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, dict[str, Any]]:
    """`monitor_canary --act` in-process; the exit code and the JSON envelope."""
    code = monitor_canary.main(
        [
            "--act", "--platform-dir", str(platform), "--policy", str(policy),
            "--state-file", str(state), "--output", "json", *extra,
        ]
    )  # fmt: skip
    return code, json.loads(capsys.readouterr().out)


def test_the_platform_runs_the_foreign_service(platform: Path) -> None:
    state = StateStore(platform).read()
    assert state.service_command == FOREIGN
    assert state.processes["stable"].args == FOREIGN


def test_a_foreign_code_canary_is_promoted_step_by_step(
    platform: Path, load: Load, policy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tracks.deploy(platform, track="canary", env={"APP_VERSION": "foreign-2"})
    code, out = monitor(platform, policy, tmp_path / "state.json", capsys)
    assert code == EXIT_OK, out
    assert out["status"] == "promoted"
    assert {20.0, 50.0, 100.0} <= {h["step"] for h in out["data"]["history"]}
    state = LocalBackend(platform).state()
    assert (state.weights, state.versions["stable"]) == ({"stable": 100.0}, "foreign-2")
    assert load.failed == 0, load.statuses


def test_a_foreign_prompt_canary_is_promoted(
    platform: Path, load: Load, policy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = Path(StateStore(platform).read().registry_dir)
    registry_ops.add_version(registry, "rag_answer", REPO / "examples/prompts/rag_answer/v2.yaml")
    args = ["--target", "prompt", "--platform-dir", str(platform), "--candidate", "v2"]
    assert promote.main([*args, "--to", "next"]) == EXIT_OK
    capsys.readouterr()
    code, out = monitor(platform, policy, tmp_path / "state.json", capsys, "--target", "prompt")
    assert code == EXIT_OK, out
    state = registry_ops.rollout_state(registry, "rag_answer")
    assert (state.production, state.canary) == ("v2", None)
    # The foreign service reloaded the registry: it now serves v2 to everyone.
    router = StateStore(platform).read().router_url
    body = {"question": "Which version answers?", "user_id": "after-promotion"}
    poll_until(
        lambda: httpx.post(f"{router}/v1/answer", json=body).json()["prompt"]["version"] == "v2",
        timeout=10,
        message="v2 served",
    )
    assert load.failed == 0, load.statuses


def test_the_foreign_service_drains_on_sigterm(tmp_path: Path) -> None:
    shutil.copytree(REPO / "registry", tmp_path / "registry")
    port = free_port()
    env = {
        "APP_PORT": str(port), "APP_TRACK": "stable", "APP_DRAIN_SECONDS": "1.5",
        "APP_REGISTRY_DIR": str(tmp_path / "registry"),
    }  # fmt: skip
    proc = python_module(
        "foreign", "tests.support.foreign_service", port=port, env=env, log_dir=tmp_path, cwd=REPO
    )
    proc.start().wait_http("/readyz")
    try:
        proc.signal(signal.SIGTERM)
        poll_until(
            lambda: httpx.get(f"{proc.url}/readyz").status_code == 503, timeout=1, message="drain"
        )
        assert httpx.get(f"{proc.url}/healthz").status_code == 200  # still serving
        assert proc.process is not None
        assert proc.process.wait(10) == 0
    finally:
        proc.stop()
