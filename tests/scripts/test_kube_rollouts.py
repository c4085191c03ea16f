"""End to end on the API emulator: deploy, promote, rollback and monitor_canary as subprocesses,
with each cluster backend, against the staging overlay's objects and simulated traffic."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from contract.files import REPO_ROOT
from scripts.toolkit.cli import EXIT_FAILED, EXIT_OK, EXIT_TRAFFIC_UNKNOWN, EXIT_USAGE
from tests.support.kube import KubeCluster
from tests.support.kube_objects import NAMESPACE, seed, shas
from tests.support.kube_traffic import simulated_traffic
from tests.support.platform import fast_policy

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

ROUTE = ("gateway.networking.k8s.io/v1", "HTTPRoute", "ai-service")
ERROR_RATE = {
    "name": "error_rate",
    "kind": "ratio",
    "hits": 'app_answers_total{outcome="error"}',
    "total": "app_answers_total",
    "direction": "lower_is_better",
    "max_regression": 0.02,
    "limit": 0.05,
    "critical": True,
}
SPLIT = {"gateway-api": "route", "replicas": "replicas"}


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    """The shipped policy on a fast clock, judging the one metric the stand-ins count."""
    return fast_policy(
        tmp_path / "policy.yaml",
        metrics=[ERROR_RATE],
        traffic_metric="error_rate",
        min_step_seconds=1,
        interval_seconds=0.5,
        fast_interval_seconds=0.25,
        experiment=None,
    )


@pytest.fixture
def cluster() -> Iterator[KubeCluster]:
    """The canary overlay with stable at HEAD~1 on 4 pods."""
    with KubeCluster(namespace=NAMESPACE) as running:
        seed(running, sha=shas()[1])
        yield running


def run(
    cluster: KubeCluster, script: str, *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """`python -m scripts.<script> args --output json` with the emulator's kubeconfig."""
    env = {k: v for k, v in cluster.env().items() if not k.startswith("ROLLOUT_")}
    env.pop("GITHUB_STEP_SUMMARY", None)
    return subprocess.run(
        [sys.executable, "-m", f"scripts.{script}", *args, "--output", "json"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def envelope(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(result.stdout)
    return decoded


def canary_weight(cluster: KubeCluster) -> int:
    route = cluster.get(*ROUTE)
    assert route is not None
    rule = next(r for r in route["spec"]["rules"] if r["name"] == "ai-service")
    return int(next(b["weight"] for b in rule["backendRefs"] if b["name"] == "ai-service-canary"))


def deployment(cluster: KubeCluster, name: str) -> dict[str, Any]:
    found = cluster.get("apps/v1", "Deployment", name)
    assert found is not None
    return found


def image_tag(cluster: KubeCluster, name: str) -> str:
    image = deployment(cluster, name)["spec"]["template"]["spec"]["containers"][0]["image"]
    return str(image.rsplit(":", 1)[1])


def notes(obj: dict[str, Any] | None) -> dict[str, str]:
    found = ((obj or {}).get("metadata") or {}).get("annotations") or {}
    prefix = "ai-rollout-template/"
    return {k.removeprefix(prefix): v for k, v in found.items() if k.startswith(prefix)}


def deploy(cluster: KubeCluster, backend: str, *extra: str) -> subprocess.CompletedProcess[str]:
    if backend == "replicas":
        # Stable needs pods to share: the staging overlay runs one.
        stable = deployment(cluster, "ai-service")
        stable["spec"]["replicas"] = 4
        cluster.apply(
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ai-service"},
             "spec": {"replicas": 4}},
            field_manager="operator", force=True,
        )  # fmt: skip
        cluster.controller.settle()
    return run(cluster, "deploy", "--backend", backend, "--sha", shas()[0], *extra)


@pytest.mark.parametrize("backend", ["gateway-api", "replicas"])
def test_a_good_canary_is_promoted(cluster: KubeCluster, policy: Path, backend: str) -> None:
    deployed = deploy(cluster, backend)
    assert deployed.returncode == EXIT_OK, deployed.stderr
    with simulated_traffic(cluster, split=SPLIT[backend], canary_errors=0.005) as (stable, canary):
        result = run(
            cluster, "monitor_canary", "--act", "--backend", backend, "--policy", str(policy),
            "--stable-url", stable.url, "--canary-url", canary.url,
            "--state-file", str(policy.parent / "state.json"),
        )  # fmt: skip
    assert result.returncode == EXIT_OK, result.stderr
    assert envelope(result)["status"] == "promoted"
    assert image_tag(cluster, "ai-service") == shas()[0]
    assert deployment(cluster, "ai-service-canary")["spec"]["replicas"] == 0
    if backend == "gateway-api":
        assert canary_weight(cluster) == 0
        assert notes(cluster.get(*ROUTE))["decision"] == "promoted"
        # The route keeps users on one version: the judge must not test a per-request ratio.
        assert "assumes code_assignment: user" in result.stderr
    else:
        assert "code_assignment" not in result.stderr


@pytest.mark.parametrize("backend", ["gateway-api", "replicas"])
def test_a_bad_canary_is_rolled_back(cluster: KubeCluster, policy: Path, backend: str) -> None:
    assert deploy(cluster, backend).returncode == EXIT_OK
    with simulated_traffic(cluster, split=SPLIT[backend], canary_errors=0.3) as (stable, canary):
        result = run(
            cluster, "monitor_canary", "--act", "--backend", backend, "--policy", str(policy),
            "--stable-url", stable.url, "--canary-url", canary.url,
            "--state-file", str(policy.parent / "state.json"),
        )  # fmt: skip
    assert result.returncode == EXIT_FAILED, result.stderr
    assert envelope(result)["status"] == "rolled back"
    assert image_tag(cluster, "ai-service") == shas()[1]
    assert deployment(cluster, "ai-service-canary")["spec"]["replicas"] == 0
    if backend == "gateway-api":
        assert canary_weight(cluster) == 0


def under_way(cluster: KubeCluster, backend: str) -> str:
    """A rollout of HEAD under way with `backend`; the Deployment that runs the new build."""
    if backend == "service-selector":
        base = ("--backend", backend)
        deployed = run(cluster, "deploy", *base, "--track", "green", "--sha", shas()[0])
        assert deployed.returncode == EXIT_OK, deployed.stderr
        assert run(cluster, "promote", *base, "--switch", "green").returncode == EXIT_OK
        return "ai-service-green"
    deployed = deploy(cluster, backend)
    assert deployed.returncode == EXIT_OK, deployed.stderr
    if backend == "rolling":
        return "ai-service"
    stepped = run(cluster, "promote", "--backend", backend, "--to", "50")
    assert stepped.returncode == EXIT_OK, stepped.stderr
    return "ai-service-canary"


@pytest.mark.parametrize("backend", ["gateway-api", "replicas", "service-selector", "rolling"])
def test_a_rollback_with_the_new_pods_gone_and_the_api_answering_503(backend: str) -> None:
    component = "blue-green" if backend == "service-selector" else "canary"
    with KubeCluster(namespace=NAMESPACE) as cluster:
        seed(cluster, component, sha=shas()[1])
        new = under_way(cluster, backend)
        cluster.controller.delete_pods(new)
        cluster.fail(status=503, count=5)  # its first five requests: about 3 s of backoff
        result = run(cluster, "rollback", "--backend", backend, "--reason", "new pods lost")
        assert result.returncode == EXIT_OK, result.stderr
        assert "rolled back" in result.stderr
        assert sum(r.status == 503 for r in cluster.requests) == 5
        if backend == "gateway-api":
            assert canary_weight(cluster) == 0
        if backend in ("gateway-api", "replicas"):
            assert deployment(cluster, "ai-service-canary")["spec"]["replicas"] == 0
        if backend == "replicas":
            assert deployment(cluster, "ai-service")["spec"]["replicas"] == 4
        if backend == "service-selector":
            service = cluster.get("v1", "Service", "ai-service")
            assert service is not None and service["spec"]["selector"]["track"] == "blue"
        if backend == "rolling":
            assert image_tag(cluster, "ai-service") == shas()[1]


def test_a_rollback_that_cannot_reach_the_cluster_exits_4(cluster: KubeCluster) -> None:
    assert deploy(cluster, "gateway-api").returncode == EXIT_OK
    assert run(cluster, "promote", "--backend", "gateway-api", "--to", "20").returncode == 0
    cluster.stop_server()
    started = time.monotonic()
    result = run(cluster, "rollback", "--backend", "gateway-api", "--api-timeout", "2")
    assert time.monotonic() - started < 15
    assert result.returncode == EXIT_TRAFFIC_UNKNOWN, result.stderr
    assert envelope(result)["errors"][0].startswith("traffic state unknown: ")


@pytest.mark.parametrize("backend", ["gateway-api", "replicas"])
def test_a_monitor_killed_mid_step_resumes_from_the_cluster(
    cluster: KubeCluster, policy: Path, tmp_path: Path, backend: str
) -> None:
    assert deploy(cluster, backend).returncode == EXIT_OK
    # The object that keeps the rollout's state: the route, or the canary Deployment.
    kept = ROUTE if backend == "gateway-api" else ("apps/v1", "Deployment", "ai-service-canary")
    data = yaml.safe_load(policy.read_text())
    data["min_step_seconds"] = 3  # long enough to be killed in
    policy.write_text(yaml.safe_dump(data))
    env = {k: v for k, v in cluster.env().items() if not k.startswith("ROLLOUT_")}
    with simulated_traffic(cluster, split=SPLIT[backend], canary_errors=0.005) as (
        stable,
        canary,
    ):
        urls = ["--stable-url", stable.url, "--canary-url", canary.url]
        first = subprocess.Popen(  # our own module
            [sys.executable, "-m", "scripts.monitor_canary", "--act", "--backend", backend,
             "--policy", str(policy), *urls, "--state-file", str(tmp_path / "one" / "state.json")],
            cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while "monitor" not in notes(cluster.get(*kept)):
                assert time.monotonic() < deadline, "the first monitor never saved its state"
                time.sleep(0.2)
            time.sleep(1.0)
        finally:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(10)
        saved = json.loads(notes(cluster.get(*kept))["monitor"])
        assert saved["final"] is None and saved["checks"] >= 1
        # Another machine: a fresh checkout has no state file; the cluster has the state.
        result = run(
            cluster, "monitor_canary", "--act", "--backend", backend, "--policy",
            str(policy), *urls, "--state-file", str(tmp_path / "two" / "state.json"),
        )  # fmt: skip
    assert result.returncode == EXIT_OK, result.stderr
    resumed = json.loads((tmp_path / "two" / "state.json").read_text())
    assert resumed["started_at"] == saved["started_at"]  # the same rollout, not a new one
    assert resumed["checks"] > saved["checks"]
    assert image_tag(cluster, "ai-service") == shas()[0]


def test_an_older_sha_is_refused_unless_forced_with_a_reason(cluster: KubeCluster) -> None:
    older = run(cluster, "deploy", "--backend", "gateway-api", "--sha", shas()[2])
    assert older.returncode == EXIT_USAGE
    assert f"{shas()[2]} is older than the live {shas()[1]}" in envelope(older)["errors"][0]
    assert image_tag(cluster, "ai-service-canary") == shas()[1]  # nothing changed
    no_reason = run(cluster, "deploy", "--backend", "gateway-api", "--sha", shas()[2], "--force")
    assert no_reason.returncode == EXIT_USAGE and "--reason" in no_reason.stderr
    forced = run(
        cluster, "deploy", "--backend", "gateway-api", "--sha", shas()[2],
        "--force", "--reason", "revert of a bad migration",
    )  # fmt: skip
    assert forced.returncode == EXIT_OK, forced.stderr
    assert "revert of a bad migration" in notes(deployment(cluster, "ai-service-canary"))["forced"]
    rolling = run(cluster, "deploy", "--backend", "rolling", "--sha", shas()[2])
    assert rolling.returncode == EXIT_USAGE and "is older than the live" in rolling.stderr
    assert image_tag(cluster, "ai-service") == shas()[1]


def test_blue_green_deploy_switch_and_switch_back() -> None:
    with KubeCluster(namespace=NAMESPACE) as cluster:
        seed(cluster, "blue-green", sha=shas()[1])
        base = ("--backend", "service-selector")
        deployed = run(cluster, "deploy", *base, "--track", "green", "--sha", shas()[0])
        assert deployed.returncode == EXIT_OK, deployed.stderr
        switched = run(cluster, "promote", *base, "--switch", "green")
        assert switched.returncode == EXIT_OK, switched.stderr
        service = cluster.get("v1", "Service", "ai-service")
        assert service is not None and service["spec"]["selector"]["track"] == "green"
        again = run(cluster, "deploy", *base, "--track", "green", "--sha", shas()[0])
        assert again.returncode == EXIT_USAGE and "serves all traffic" in again.stderr
        back = run(cluster, "rollback", *base)
        assert back.returncode == EXIT_OK, back.stderr
        service = cluster.get("v1", "Service", "ai-service")
        assert service is not None and service["spec"]["selector"]["track"] == "blue"


def test_rolling_deploy_undone_when_never_ready_and_rolled_back_by_hand(
    cluster: KubeCluster,
) -> None:
    cluster.controller.never_ready("ai-service", reason="ImagePullBackOff")
    failed = run(
        cluster, "deploy", "--backend", "rolling", "--sha", shas()[0], "--wait-timeout", "2"
    )
    assert failed.returncode == EXIT_FAILED
    assert "ImagePullBackOff" in failed.stderr and "undone" in failed.stderr
    assert image_tag(cluster, "ai-service") == shas()[1]
    cluster.controller.ready("ai-service")
    assert run(cluster, "deploy", "--backend", "rolling", "--sha", shas()[0]).returncode == 0
    assert image_tag(cluster, "ai-service") == shas()[0]
    back = run(cluster, "rollback", "--backend", "rolling")
    assert back.returncode == EXIT_OK, back.stderr
    assert image_tag(cluster, "ai-service") == shas()[1]


def test_dry_run_sends_no_write(cluster: KubeCluster) -> None:
    mark = cluster.mark()
    result = run(cluster, "deploy", "--backend", "gateway-api", "--sha", shas()[0], "--dry-run")
    assert result.returncode == EXIT_OK, result.stderr
    assert "dry-run: PATCH /apis/apps/v1/namespaces/ai-staging/deployments/ai-service-canary" in (
        result.stderr
    )
    assert [r.method for r in cluster.requests_since(mark) if r.method != "GET"] == []


def test_bad_input_is_one_sentence_and_leaves_traffic_on_stable(cluster: KubeCluster) -> None:
    assert deploy(cluster, "gateway-api").returncode == EXIT_OK
    step = ("promote", "--backend", "gateway-api", "--to", "20", "--wait-timeout", "2")
    cases: list[tuple[Any, tuple[str, ...], int, str]] = [
        (None, ("--namespace", "ai-prod"), EXIT_USAGE,
         "HTTPRoute ai-service is not in namespace ai-prod"),
        (None, ("--rule", "web"), EXIT_USAGE, "has no rule named 'web' (rules: ai-service)"),
        (None, ("--context", "prod"), EXIT_USAGE, "has no context 'prod'; choose one of:"),
        (lambda: cluster.forbid("patch", "httproutes"), (), EXIT_USAGE,
         "forbidden: httproutes.gateway.networking.k8s.io \"ai-service\" is forbidden"),
        (lambda: cluster.controller.not_accepted("ai-service"), (), EXIT_USAGE,
         "HTTPRoute ai-service is not accepted by its gateway: Accepted=False"),
        (lambda: cluster.controller.never_ready("ai-service-canary", "ImagePullBackOff"), (),
         EXIT_FAILED, "ImagePullBackOff"),
    ]  # fmt: skip
    for breaking, extra, code, message in cases:
        if breaking is not None:
            breaking()
            if code == EXIT_FAILED:
                cluster.controller.delete_pods("ai-service-canary")  # its pods restart, failing
                cluster.controller.restore_pods("ai-service-canary")
                cluster.controller.settle()
        result = run(cluster, *step, *extra)
        assert result.returncode == code, (extra, result.stderr)
        (error,) = envelope(result)["errors"]
        assert message in error, error
        assert error.count(". ") == 0 and error.endswith("."), error  # one sentence
        assert canary_weight(cluster) == 0, error  # traffic stays on stable
        cluster.heal()
        cluster.controller.accepted("ai-service")
