"""deploy.yml itself, run by the local runner with the local platform as the cluster: a fresh
fork's run is green with the deploy jobs skipped; a good commit goes through staging and is
promoted in production, with the expand migration before each deploy and the contract one after
the promotion; a re-run of an older commit moves nothing; a bad commit is rolled back
by the canary analysis; a cancelled canary is restored by its trap and the rollback job runs;
a freeze window stops production.

Production is a local platform under steady load (as users would make it); staging is created
by the run itself. The policy is the shipped one on a fast clock (tests/support/platform.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from contract.files import REPO_ROOT as REPO
from contract.registry.loader import load_registry
from scripts.toolkit.load import locust_args
from scripts.toolkit.platform import lifecycle
from scripts.toolkit.platform.gitrefs import git
from scripts.toolkit.platform.state import StateStore
from scripts.toolkit.processes import ManagedProcess, free_port, python_module
from tests.support.platform import fast_policy, running_platform

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@dataclass
class Pipeline:
    """Production under load, a staging folder, and the variables a run gets."""

    folder: Path
    production: Path
    staging: Path
    production_port: int
    staging_port: int

    def run(
        self, *args: str, workflow: str = "deploy.yml", policy: Path | None = None, **variables: str
    ) -> dict[str, Any]:
        """`python -m scripts.run_workflow <workflow> ...` with the platform as the cluster."""
        values = {
            "ROLLOUT_BACKEND": "local",
            "ROLLOUT_POLICY": str(policy or self.folder / "policy.yaml"),
            "ROLLOUT_FREEZE_FILE": str(self.folder / "no-freeze.yaml"),
            "PRODUCTION_URL": f"http://127.0.0.1:{self.production_port}",
            "QUALITY_LIMIT": "10",
            "LOAD_TEST_SECONDS": "5",
            "CANARY_SEGMENT_MINUTES": "2",
            **variables,
        }
        argv = [
            sys.executable, "-m", "scripts.run_workflow", workflow, "--output", "json",
            "--assume-success", "test",  # ./dev test: CI runs it; this test is part of it
            *(f"--var={k}={v}" for k, v in values.items()),
            f"--env-var=staging:LOCAL_PLATFORM_DIR={self.staging}",
            f"--env-var=staging:LOCAL_PLATFORM_PORT={self.staging_port}",
            f"--env-var=production:LOCAL_PLATFORM_DIR={self.production}",
            f"--env-var=production:LOCAL_PLATFORM_PORT={self.production_port}",
            *args,
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ROLLOUT_", "GITHUB_"))}
        done = subprocess.run(
            argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=200, check=False
        )
        result: dict[str, Any] = json.loads(done.stdout)["data"] if done.stdout else {}
        result["log"] = done.stderr
        result["exit_code"] = done.returncode
        return result

    def live(self) -> dict[str, Any]:
        """Who serves production now: the router's weights and each track's version."""
        state = StateStore(self.production).read()
        return {
            "weights": {t: w for t, w in (state.routes or {}).get("weights", {}).items() if w},
            "versions": {p.track: p.version for p in state.processes.values() if p.track},
        }


def commit(message: str, path: str, change: tuple[str, str] | None = None) -> str:
    """A commit on top of HEAD with one file changed, made with git's plumbing: no branch,
    index or working tree moves (other work in the checkout is left alone)."""
    text = git("show", f"HEAD:{path}")
    if change is None:
        text += f"\n<!-- {message} -->\n"
    else:
        assert change[0] in text, f"{path} no longer holds {change[0]!r}: update this test"
        text = text.replace(change[0], change[1])
    with tempfile.TemporaryDirectory() as folder:
        index = {**os.environ, "GIT_INDEX_FILE": str(Path(folder) / "index")}
        blob = subprocess.run(
            ["git", "hash-object", "-w", "--stdin"], input=text, cwd=REPO,  # noqa: S607
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        for argv in (
            ["git", "read-tree", "HEAD"],
            ["git", "update-index", "--cacheinfo", f"100644,{blob},{path}"],
        ):
            subprocess.run(argv, cwd=REPO, env=index, check=True, capture_output=True)
        tree = subprocess.run(
            ["git", "write-tree"], cwd=REPO, env=index, capture_output=True, text=True,  # noqa: S607
            check=True,
        ).stdout.strip()  # fmt: skip
    identity = {  # a CI checkout has no git identity configured
        f"GIT_{role}_{part}": value
        for role in ("AUTHOR", "COMMITTER")
        for part, value in (("NAME", "pipeline test"), ("EMAIL", "pipeline-test@localhost"))
    }
    return subprocess.run(
        ["git", "commit-tree", tree, "-p", "HEAD", "-m", f"test: {message}"],  # noqa: S607
        cwd=REPO, env={**os.environ, **identity}, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def short(sha: str) -> str:
    return git("rev-parse", "--short", sha)


def result(run: dict[str, Any], job: str) -> str:
    return str(run["jobs"][job]["result"])


def failed(run: dict[str, Any]) -> str:
    return str(run["log"])[-6000:]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    folder = tmp_path_factory.mktemp("pipeline")
    fast_policy(folder / "policy.yaml", max_evidence_seconds=15)
    fast_policy(folder / "slow-policy.yaml", min_step_seconds=120, max_step_seconds=300)
    (folder / "no-freeze.yaml").write_text("schema_version: 1\nwindows: []\n")
    staging = folder / "staging"
    with running_platform(folder / "production") as production:
        state = StateStore(production).read()
        load: ManagedProcess = python_module(
            "load", "locust", port=0, log_dir=folder, cwd=REPO,
            args=locust_args(state.router_url, users=20, seconds=400,
                             extra=("--stop-timeout", "2")),
            env={"LOAD_RATE": "2", "LOAD_FEEDBACK": "0.3", "LOAD_SEED": "7"},
        ).start()  # fmt: skip
        try:
            yield Pipeline(folder, production, staging, state.router_port, free_port())
        finally:
            load.stop()
            lifecycle.down(staging)


def test_a_fresh_fork_is_green_with_the_deploy_jobs_skipped_and_a_notice() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scripts.run_workflow", "deploy.yml", "--output", "json",
         "--assume-success", "test"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")},
    )  # fmt: skip
    run = json.loads(done.stdout)["data"]
    assert done.returncode == 0 and run["conclusion"] == "success", done.stderr
    deploying = ["build", "staging", "freeze", "production", "canary", "rollback", "contract"]
    assert all(run["jobs"][job]["result"] == "skipped" for job in deploying)
    titles = [a["title"] for a in run["annotations"] if a["level"] == "notice"]
    assert "No cluster configured" in titles


def test_a_good_commit_goes_through_staging_and_is_promoted(pipeline: Pipeline) -> None:
    good = commit("a harmless change", "README.md")
    run = pipeline.run("--sha", good)
    assert run["conclusion"] == "success", failed(run)
    stages = ("staging/deploy", "staging-smoke/smoke", "staging-quality/quality",
              "staging-load/load", "freeze", "production/deploy", "canary-smoke/smoke")  # fmt: skip
    for job in stages:
        assert result(run, job) == "success", job
    assert run["jobs"]["canary"]["outputs"]["outcome"] == "promoted"
    assert result(run, "canary-2") == "skipped" and result(run, "rollback") == "skipped"
    live = pipeline.live()
    assert live["versions"]["stable"] == short(good) and "canary" not in live["versions"]
    record = run["summaries"]["canary/canary"]
    assert "Canary analysis" in record and "```mermaid" in record
    assert "load test: pass" in run["log"]
    # The expand migration ran in each deploy stage before traffic moved; contract after promotion.
    for job in ("staging/deploy", "production/deploy"):
        assert "### Migration (expand): local platform database" in run["summaries"][job], job
    assert result(run, "contract/migrate") == "success", failed(run)
    assert "### Migration (contract)" in run["summaries"]["contract/migrate"]


def test_a_rerun_of_an_older_commit_moves_no_traffic(pipeline: Pipeline) -> None:
    before = pipeline.live()
    older = git("rev-parse", f"{before['versions']['stable']}~1")
    run = pipeline.run("--sha", older, ROLLOUT_STAGING="off")
    assert run["conclusion"] == "failure"
    assert result(run, "production/deploy") == "failure", failed(run)
    assert any(a["title"] == "Older than what is live" for a in run["annotations"])
    assert result(run, "canary") == "skipped"
    assert pipeline.live() == before


def test_a_bad_commit_is_rolled_back_by_the_canary_analysis(pipeline: Pipeline) -> None:
    before = pipeline.live()
    slow = (
        "fault_latency_ms: int = Field(default=0,",
        "fault_latency_ms: int = Field(default=700,",
    )
    bad = commit("answers 0.7 s slower", "app/core/config.py", slow)
    run = pipeline.run("--sha", bad, ROLLOUT_STAGING="off")
    assert run["conclusion"] == "failure"
    assert result(run, "canary-smoke/smoke") == "success", failed(run)
    assert run["jobs"]["canary"]["outputs"]["outcome"] == "rolled_back", failed(run)
    assert "slow_answers" in run["summaries"]["canary/canary"]
    assert result(run, "rollback/rollback") == "success", failed(run)
    assert result(run, "contract") == "skipped"  # contract revisions wait for a promotion
    live = pipeline.live()
    assert live["versions"]["stable"] == before["versions"]["stable"]
    assert "canary" not in live["versions"] and live["weights"].get("canary", 0) == 0


def test_a_cancelled_canary_is_restored_by_its_trap_and_the_rollback_job_runs(
    pipeline: Pipeline,
) -> None:
    before = pipeline.live()
    change = commit("another harmless change", "README.md")
    run = pipeline.run(
        "--sha", change, "--cancel-after", "canary/canary=12",
        policy=pipeline.folder / "slow-policy.yaml", ROLLOUT_STAGING="off",
    )  # fmt: skip
    assert run["conclusion"] == "cancelled", failed(run)
    assert "20% hold" in run["log"], "the canary had traffic when the run was cancelled"
    assert result(run, "canary/canary") == "cancelled"
    assert any(a["title"] == "Cancelled" for a in run["annotations"])
    assert "SIGTERM to the step's shell" not in run["log"], "the trap took over 7.5 s"
    assert result(run, "rollback/rollback") == "success", failed(run)
    live = pipeline.live()
    assert live["versions"]["stable"] == before["versions"]["stable"]
    assert "canary" not in live["versions"] and live["weights"].get("canary", 0) == 0


def test_a_freeze_window_stops_production(pipeline: Pipeline) -> None:
    frozen = pipeline.folder / "frozen.yaml"
    always = "{name: always, weekly: {from: 'Mon 00:00', to: 'Sun 23:59'}}"
    frozen.write_text(f"schema_version: 1\nwindows:\n  - {always}\n")
    before = pipeline.live()
    run = pipeline.run(
        "--sha", before["versions"]["stable"], ROLLOUT_STAGING="off",
        ROLLOUT_FREEZE_FILE=str(frozen),
    )  # fmt: skip
    assert result(run, "freeze") == "failure", failed(run)
    assert "frozen by the window 'always'" in run["log"]
    assert result(run, "production") == "skipped" and result(run, "rollback") == "skipped"
    assert pipeline.live() == before


def registry_versions(pipeline: Pipeline) -> dict[str, str]:
    """Each version of rag_answer in the registry production reads, with its status."""
    registry = Path(StateStore(pipeline.production).read().registry_dir)
    prompts = load_registry(registry).prompts["rag_answer"].versions
    return {version: prompt.status for version, prompt in prompts.items()}


def test_a_prompt_that_drops_the_context_is_refused_offline(pipeline: Pipeline) -> None:
    run = pipeline.run(
        "--event", "workflow_dispatch",
        "--input", "file=examples/prompts/rag_answer/v2-no-context.yaml",
        workflow="registry.yml", QUALITY_LIMIT="",
    )  # fmt: skip
    assert result(run, "candidate") == "success", failed(run)
    assert run["jobs"]["candidate"]["outputs"]["version"] == "v2-no-context"
    assert result(run, "evaluate") == "failure", failed(run)
    assert "quality gate FAIL: rag_answer v2-no-context" in run["log"]
    assert "Quality evaluation: **FAIL**" in run["summaries"]["evaluate"]
    assert result(run, "canary-start") == "skipped"
    assert "v2-no-context" not in registry_versions(pipeline)


def test_a_prompt_version_canaries_in_the_service_and_a_cancel_retires_it(
    pipeline: Pipeline,
) -> None:
    run = pipeline.run(
        "--event", "workflow_dispatch",
        "--input", "file=examples/prompts/rag_answer/v2.yaml",
        "--cancel-after", "canary/canary=8",
        workflow="registry.yml", policy=pipeline.folder / "slow-policy.yaml", QUALITY_LIMIT="",
    )  # fmt: skip
    assert result(run, "evaluate") == "success", failed(run)
    assert result(run, "canary-start") == "success", failed(run)
    assert "quality gate PASS: rag_answer v2" in run["log"], failed(run)
    assert "% hold" in run["log"], "the prompt canary had its users when the run was cancelled"
    assert any(a["title"] == "Cancelled" for a in run["annotations"])
    assert result(run, "canary/canary") == "cancelled", failed(run)
    assert result(run, "rollback/rollback") == "success", failed(run)
    assert registry_versions(pipeline) == {"v1": "production", "v2": "retired"}
    assert "build" not in run["jobs"]  # no image for a prompt


def test_rollback_by_hand_reads_the_live_state_records_the_reason_and_is_idempotent(
    pipeline: Pipeline,
) -> None:
    before = pipeline.live()
    run = pipeline.run(
        "--event", "workflow_dispatch", "--input", "environment=production",
        "--input", "what=canary", "--input", "reason=drill: nothing is wrong",
        workflow="rollback.yml",
    )  # fmt: skip
    assert run["conclusion"] == "success", failed(run)
    record = run["summaries"]["rollback/rollback"]
    assert record.index("## Before the rollback") < record.index("## After the rollback")
    assert "Reason: drill: nothing is wrong (by " in record
    assert pipeline.live() == before  # no canary to roll back: nothing changed
