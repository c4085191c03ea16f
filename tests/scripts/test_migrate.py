"""scripts.migrate against the Kubernetes emulator (the staging overlay's objects): the migration
Job replaces the last one with the build's image and is waited for; a failed or endless Job
stops the deploy with one sentence; --show-live prints the commit serving all traffic."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts import migrate
from scripts.toolkit.cli import EXIT_FAILED, EXIT_OK
from scripts.toolkit.migrations.job import JOB_MANIFEST, read_manifest
from tests.support.kube import KubeCluster
from tests.support.kube_objects import NAMESPACE, seed, shas

IMAGE = "ghcr.io/your-org/ai-service"
JOB = "ai-service-migrate"
LOGS = f"`kubectl -n {NAMESPACE} logs job/{JOB}`"


@pytest.fixture
def cluster() -> Iterator[KubeCluster]:
    """The canary overlay, stable at HEAD~1."""
    with KubeCluster(namespace=NAMESPACE) as running:
        seed(running, sha=shas()[1])
        yield running


def run(cluster: KubeCluster, *args: str) -> int:
    return migrate.main(
        ["--backend", "gateway-api", "--kubeconfig", str(cluster.kubeconfig),
         "--api-timeout", "5", *args]
    )  # fmt: skip


def job(cluster: KubeCluster) -> dict[str, Any]:
    found = cluster.get("batch/v1", "Job", JOB)
    assert found is not None, "no migration Job"
    return found


def container(obj: dict[str, Any]) -> dict[str, Any]:
    return dict(obj["spec"]["template"]["spec"]["containers"][0])


def test_a_completed_job_replaces_the_last_one_with_the_builds_image_and_settings(
    cluster: KubeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    last = read_manifest(JOB_MANIFEST)  # the Job as an earlier deploy left it
    last["metadata"]["namespace"] = NAMESPACE
    last["spec"]["template"]["spec"]["containers"][0]["image"] = f"{IMAGE}:{shas()[2]}"
    cluster.create(last)
    new = shas()[0]
    assert run(cluster, "--phase", "expand", "--sha", new, "--output", "json") == EXIT_OK
    envelope = json.loads(capsys.readouterr().out)
    assert envelope["data"]["image"] == f"{IMAGE}:{new}"
    created = job(cluster)
    assert container(created)["image"] == f"{IMAGE}:{new}"
    assert container(created)["command"][-2:] == ["--phase", "expand"]
    assert created["metadata"]["annotations"]["ai-rollout-template/sha"] == new
    deployment = cluster.get("apps/v1", "Deployment", "ai-service")
    assert deployment is not None
    # The cluster's settings ConfigMap carries kustomize's hash suffix: the Job reads the same.
    assert container(created)["envFrom"] == container(deployment)["envFrom"]
    assert "ai-service-settings-" in json.dumps(container(created)["envFrom"])
    methods = [(r.method, r.path.rsplit("/", 1)[-1]) for r in cluster.requests]
    assert ("DELETE", JOB) in methods and ("POST", "jobs") in methods


def test_a_contract_run_is_the_same_job_with_phase_contract(cluster: KubeCluster) -> None:
    assert run(cluster, "--phase", "contract", "--sha", shas()[0]) == EXIT_OK
    assert container(job(cluster))["command"][-2:] == ["--phase", "contract"]


def test_a_failed_job_stops_the_deploy_naming_the_job_and_its_logs(
    cluster: KubeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    route = cluster.get("gateway.networking.k8s.io/v1", "HTTPRoute", "ai-service")
    cluster.controller.fail_job(JOB)
    assert run(cluster, "--phase", "expand", "--sha", shas()[0]) == EXIT_FAILED
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: the migration Job {JOB} failed (BackoffLimitExceeded")
    assert LOGS in err and "no traffic moved" in err
    assert len(err.splitlines()) == 1
    after = cluster.get("gateway.networking.k8s.io/v1", "HTTPRoute", "ai-service")
    assert route is not None and after is not None
    assert after["spec"] == route["spec"]


def test_a_job_that_never_finishes_times_out_in_one_sentence(
    cluster: KubeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster.controller.stop()  # nothing runs the Job
    code = run(cluster, "--phase", "expand", "--sha", shas()[0], "--job-timeout", "1.5")
    assert code == EXIT_FAILED
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: the migration Job {JOB} did not complete within 1.5 s; no traffic moved: read "
        f"its logs with {LOGS} (it may still run: the next deploy replaces it)."
    )


def test_show_live_prints_the_commit_serving_all_traffic(
    cluster: KubeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(cluster, "--show-live", "--output", "json") == EXIT_OK
    data = json.loads(capsys.readouterr().out)["data"]
    assert data == {"live": shas()[1], "where": "Deployment ai-service"}


def test_show_live_on_blue_green_is_the_serving_colors_commit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with KubeCluster(namespace=NAMESPACE) as colors:
        seed(colors, "blue-green", sha=shas()[1])
        code = migrate.main(
            ["--backend", "service-selector", "--kubeconfig", str(colors.kubeconfig),
             "--show-live", "--output", "json"]
        )  # fmt: skip
    assert code == EXIT_OK
    data = json.loads(capsys.readouterr().out)["data"]
    assert data["live"] == shas()[1] and data["where"].startswith("Deployment ai-service-")


def test_show_live_without_a_local_platform_is_unknown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = migrate.main(["--show-live", "--platform-dir", str(tmp_path), "--output", "json"])
    assert code == EXIT_OK
    assert json.loads(capsys.readouterr().out)["data"]["live"] is None


def test_a_cluster_run_without_a_sha_or_phase_says_what_to_pass(
    cluster: KubeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(cluster, "--phase", "expand") == 2
    assert "--sha is required on a cluster" in capsys.readouterr().err
    assert run(cluster, "--sha", shas()[0]) == 2
    assert "--phase is required" in capsys.readouterr().err


def test_on_the_local_platform_the_migration_runs_on_its_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = migrate.main(["--phase", "expand", "--platform-dir", str(tmp_path), "--output", "json"])
    assert code == EXIT_OK, capsys.readouterr().err
    data = json.loads(capsys.readouterr().out)["data"]
    assert data["database"] == str(tmp_path.resolve() / "service.db")
    assert (tmp_path / "service.db").stat().st_size > 0


def test_a_dry_run_prints_the_replacement_and_creates_no_job(
    cluster: KubeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(cluster, "--phase", "expand", "--sha", shas()[0], "--dry-run") == EXIT_OK
    err = capsys.readouterr().err
    assert f"dry-run: DELETE /apis/batch/v1/namespaces/{NAMESPACE}/jobs/{JOB}" in err
    assert f"dry-run: POST /apis/batch/v1/namespaces/{NAMESPACE}/jobs" in err
    assert cluster.get("batch/v1", "Job", JOB) is None
    assert not [r for r in cluster.requests if r.method in ("POST", "DELETE", "PATCH")]
