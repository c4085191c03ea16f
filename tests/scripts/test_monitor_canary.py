"""End-to-end rollouts on the real local platform (router, instances, model server) under load.

Each test deploys its own canary on one shared platform and runs `monitor_canary --act`
in-process; the platform's instances, router and model server are real processes.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from contract.files import REPO_ROOT
from scripts import monitor_canary, promote
from scripts.toolkit import registry_ops
from scripts.toolkit.cli import EXIT_FAILED, EXIT_INCONCLUSIVE, EXIT_OK
from scripts.toolkit.platform import tracks
from scripts.toolkit.platform.state import StateStore
from scripts.toolkit.policy import DEFAULT_POLICY
from scripts.toolkit.traffic.local import LocalBackend
from tests.support.load import Load
from tests.support.platform import fast_policy, running_platform

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
REPO = REPO_ROOT


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A running local platform (no Prometheus: these tests scrape) for the whole module."""
    with running_platform(tmp_path_factory.mktemp("platform")) as path:
        yield path


@pytest.fixture(scope="module")
def load(platform: Path) -> Iterator[Load]:
    """Steady load on the router for the whole module."""
    with Load(StateStore(platform).read().router_url, workers=6, max_seconds=600) as running:
        yield running


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's policy on a fast clock, with wider margins so tests decide in seconds
    (the statistics are the same; the production margins need more samples)."""
    data = yaml.safe_load(DEFAULT_POLICY.read_text(encoding="utf-8"))
    for metric in data["metrics"]:
        if metric["name"] == "quality_score":
            metric["max_regression"] = 0.15
    return fast_policy(tmp_path_factory.mktemp("policy") / "policy.yaml", metrics=data["metrics"])


def monitor(
    platform: Path, policy: Path, state: Path, *extra: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict]:
    """`monitor_canary --act` in-process; returns the exit code and the JSON envelope."""
    code = monitor_canary.main(
        [
            "--act",
            "--platform-dir",
            str(platform),
            "--policy",
            str(policy),
            "--state-file",
            str(state),
            "--output",
            "json",
            *extra,
        ]
    )
    return code, json.loads(capsys.readouterr().out)


def weights(platform: Path) -> dict[str, float]:
    """The router's weights now."""
    return LocalBackend(platform).state().weights


def test_a_good_canary_is_promoted_step_by_step(
    platform: Path, load: Load, policy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tracks.deploy(platform, track="canary", env={"APP_VERSION": "e2e-good"})
    code, out = monitor(platform, policy, tmp_path / "state.json", capsys=capsys)
    assert code == EXIT_OK, out
    assert out["status"] == "promoted"
    steps = [h["step"] for h in out["data"]["history"]]
    assert {20.0, 50.0, 100.0} <= set(steps)
    state = LocalBackend(platform).state()
    assert state.weights == {"stable": 100.0}
    assert state.versions["stable"] == "e2e-good"
    assert load.failed == 0, load.statuses


def test_an_erroring_canary_is_rolled_back(
    platform: Path, load: Load, policy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tracks.deploy(
        platform, track="canary", env={"APP_VERSION": "e2e-bad", "APP_FAULT_ERROR_RATE": "0.3"}
    )
    code, out = monitor(platform, policy, tmp_path / "state.json", capsys=capsys)
    assert code == EXIT_FAILED, out
    assert out["status"] == "rolled back"
    assert any(r.startswith("error_rate") for r in out["data"]["last_check"]["reasons"])
    assert weights(platform).get("canary", 0.0) == 0.0


def test_a_prompt_that_degrades_quality_is_rolled_back(
    platform: Path, load: Load, policy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = Path(StateStore(platform).read().registry_dir)
    registry_ops.add_version(
        registry, "rag_answer", REPO / "examples" / "prompts" / "rag_answer" / "v2-no-context.yaml"
    )
    assert (
        promote.main(
            [
                "--target",
                "prompt",
                "--platform-dir",
                str(platform),
                "--candidate",
                "v2-no-context",
                "--to",
                "next",
            ]
        )
        == EXIT_OK
    )
    code, out = monitor(
        platform, policy, tmp_path / "state.json", "--target", "prompt", capsys=capsys
    )
    assert code == EXIT_FAILED, out
    assert any(r.startswith("quality_score") for r in out["data"]["last_check"]["reasons"])
    state = registry_ops.rollout_state(registry, "rag_answer")
    assert (state.production, state.canary) == ("v1", None)


def test_unreachable_metrics_hold_then_roll_back(
    platform: Path, load: Load, policy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tracks.deploy(platform, track="canary", env={"APP_VERSION": "e2e-dark"})
    # A page that answers 404 (a port that refuses is a crashed instance: counted as such).
    dead = f"{StateStore(platform).read().router_url}/-/not-metrics"
    code, out = monitor(
        platform, policy, tmp_path / "state.json", "--canary-url", dead, capsys=capsys
    )
    assert code == EXIT_FAILED, out
    history = out["data"]["history"]
    assert history[0]["decision"] == "hold"
    assert "unavailable" in history[0]["reasons"][0]
    assert "over the 5 s limit" in history[-1]["reasons"][0]
    assert not any(h["action"] and h["action"].startswith("stepped to 50") for h in history)
    assert weights(platform).get("canary", 0.0) == 0.0


def test_a_canary_killed_mid_rollout_is_rolled_back_without_failed_requests(
    platform: Path, load: Load, policy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A crashed canary must not look quiet: the requests the router could not get answered by
    it (refused, then answered by stable) are its errors, and roll it back within two checks."""
    record = tracks.deploy(platform, track="canary", env={"APP_VERSION": "e2e-killed"})
    failed_before = load.failed
    after_kill: list[int] = []
    killed_at: list[float] = []

    # Kill the canary (a process the platform started for this test) once it serves traffic.
    def kill_when_serving() -> None:
        for _ in range(300):
            if weights(platform).get("canary", 0.0) > 0:
                os.kill(record.pid, signal.SIGKILL)
                killed_at.append(time.time())
                threading.Event().wait(1.0)
                after_kill.append(load.failed)
                return
            threading.Event().wait(0.1)

    killer = threading.Thread(target=kill_when_serving)
    killer.start()
    code, out = monitor(platform, policy, tmp_path / "state.json", capsys=capsys)
    killer.join()
    assert code == EXIT_FAILED, out
    last = out["data"]["last_check"]
    # Its error rate (the router's count) or the probe of its instances, whichever sees it first.
    assert any(r.startswith("error_rate") or "refuses connections" in r for r in last["reasons"]), (
        last["reasons"]
    )
    assert len([h for h in out["data"]["history"] if h["at"] > killed_at[0]]) <= 2
    if any(r.startswith("error_rate") for r in last["reasons"]):
        errors = next(m for m in last["verdict"]["metrics"] if m["name"] == "error_rate")
        assert errors["canary_value"] > 0.5, errors  # the router's count: the dead app counted none
    assert weights(platform).get("canary", 0.0) == 0.0
    # Only requests in flight on the canary when it died can fail (one per load worker at
    # most); afterwards the router retries refused connections on stable: no user sees an error.
    assert after_kill, "the canary never got traffic"
    assert after_kill[0] - failed_before <= load.workers
    assert load.failed == after_kill[0], load.statuses


def test_an_interrupted_monitor_resumes_and_finishes(
    platform: Path, load: Load, policy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tracks.deploy(platform, track="canary", env={"APP_VERSION": "e2e-resumed"})
    state = tmp_path / "state.json"
    code, first = monitor(platform, policy, state, "--duration", "4", capsys=capsys)
    assert code == EXIT_INCONCLUSIVE, first
    started = json.loads(state.read_text())["started_at"]
    assert weights(platform).get("canary", 0.0) > 0
    code, second = monitor(platform, policy, state, capsys=capsys)
    assert code == EXIT_OK, second
    assert json.loads(state.read_text())["started_at"] == started
    assert len(second["data"]["history"]) > len(first["data"]["history"])
    assert LocalBackend(platform).state().versions["stable"] == "e2e-resumed"
