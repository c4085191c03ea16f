"""deploy.yml's staging stage against the Kubernetes emulator (the staging overlay, stable live at
HEAD), run by the local runner: the expand migration Job runs with the build's image before the
Deployment changes; a failed Job stops the stage with one "Migration failed" annotation naming
the Job and its logs, and the Deployment keeps the live image; a re-run of an older commit stops
before its migration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from contract.files import REPO_ROOT as REPO
from tests.support.kube import KubeCluster
from tests.support.kube_objects import NAMESPACE, seed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
IMAGE = "ghcr.io/your-org/ai-service"
JOB = "ai-service-migrate"


def head() -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"],  # noqa: S607  # git from PATH
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


@pytest.fixture
def cluster() -> Iterator[KubeCluster]:
    """Staging with stable live at HEAD: the gate from the live commit has nothing to check."""
    with KubeCluster(namespace=NAMESPACE) as running:
        seed(running, sha=head())
        yield running


def run_deploy(cluster: KubeCluster, sha: str) -> dict[str, Any]:
    """deploy.yml for `sha` with the gateway-api backend and staging's kubeconfig."""
    kubeconfig = cluster.kubeconfig.read_text(encoding="utf-8")
    argv = [
        sys.executable, "-m", "scripts.run_workflow", "deploy.yml", "--output", "json",
        "--sha", sha, "--assume-success", "test",
        "--var=ROLLOUT_BACKEND=gateway-api", "--var=IMAGE_NAME=your-org/ai-service",
        f"--env-var=staging:ROLLOUT_NAMESPACE={NAMESPACE}",
        f"--env-secret=staging:KUBECONFIG={kubeconfig}",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROLLOUT_", "GITHUB_"))}
    env.pop("KUBECONFIG", None)
    done = subprocess.run(
        argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=220, check=False
    )
    result: dict[str, Any] = json.loads(done.stdout)["data"] if done.stdout else {}
    result["log"] = done.stderr
    return result


def stable_image(cluster: KubeCluster) -> str:
    deployment = cluster.get("apps/v1", "Deployment", "ai-service")
    assert deployment is not None
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


def test_the_job_runs_with_the_builds_image_before_the_deployment_changes(
    cluster: KubeCluster,
) -> None:
    sha = head()
    mark = cluster.mark()
    run = run_deploy(cluster, sha)
    assert run["jobs"]["staging/deploy"]["result"] == "success", run["log"][-5000:]
    job = cluster.get("batch/v1", "Job", JOB)
    assert job is not None
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == f"{IMAGE}:{sha}"
    writes = [
        (r.method, r.path.rsplit("/", 1)[-1])
        for r in cluster.requests_since(mark)
        if r.method in ("POST", "PATCH", "DELETE")
    ]
    created = writes.index(("POST", "jobs"))
    changed = [i for i, w in enumerate(writes) if w[0] == "PATCH"]
    assert changed and created < min(changed), writes  # the Job first, then the rollout


def test_a_failed_job_stops_the_stage_with_one_annotation_and_moves_nothing(
    cluster: KubeCluster,
) -> None:
    before = stable_image(cluster)
    cluster.controller.fail_job(JOB)
    run = run_deploy(cluster, head())
    assert run["conclusion"] == "failure"
    assert run["jobs"]["staging/deploy"]["result"] == "failure", run["log"][-5000:]
    errors = [a for a in run["annotations"] if a["level"] == "error"]
    assert [a["title"] for a in errors] == ["Migration failed"], errors
    message = errors[0]["message"]
    assert message.startswith(f"the migration Job {JOB} failed (BackoffLimitExceeded")
    assert f"kubectl -n {NAMESPACE} logs job/{JOB}" in message
    assert stable_image(cluster) == before
    assert all(run["jobs"][j]["result"] == "skipped" for j in ("production", "contract"))


def test_a_rerun_of_an_older_commit_runs_no_migration_on_the_cluster(
    cluster: KubeCluster,
) -> None:
    older = subprocess.run(
        ["git", "rev-parse", "HEAD~1"],  # noqa: S607  # git from PATH
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    before = stable_image(cluster)
    run = run_deploy(cluster, older)
    assert run["jobs"]["staging/deploy"]["result"] == "failure", run["log"][-5000:]
    titles = [a["title"] for a in run["annotations"] if a["level"] == "error"]
    assert titles == ["Older than what is live"], titles
    assert cluster.get("batch/v1", "Job", JOB) is None  # its old image never migrated
    assert stable_image(cluster) == before
