"""The workflows pass GitHub's schema, GitHub's own parser, zizmor and shellcheck, and keep the
hardening rules: pinned actions, permissions, timeouts, inputs only through env, deploy
concurrency, declared local stand-ins."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from contract.files import REPO_ROOT as REPO
from tests.workflows.support import (
    ACTIONS,
    GITHUB,
    NPM,
    STAND_INS,
    WORKFLOWS,
    load,
    scripts,
    steps,
    third_party_uses,
)

VENV_BIN = REPO / ".venv" / "bin"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def tool(name: str) -> str:
    path = VENV_BIN / name if (VENV_BIN / name).exists() else shutil.which(name)
    assert path, f"{name} is not installed: run ./dev setup"
    return str(path)


def run(argv: list[str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_the_workflows_match_githubs_json_schemas() -> None:
    for schema, files in (
        ("vendor.github-workflows", WORKFLOWS),
        ("vendor.github-actions", ACTIONS),
        ("vendor.dependabot", [GITHUB / "dependabot.yml"]),
    ):
        result = run([tool("check-jsonschema"), "--builtin-schema", schema, *map(str, files)])
        assert result.returncode == 0, result.stdout + result.stderr


def test_githubs_own_parser_finds_no_error() -> None:
    node = shutil.which("node")
    assert node, "node is not installed: run ./dev setup"
    assert (NPM / "node_modules" / "@actions" / "workflow-parser").is_dir(), "run ./dev setup"
    parse = [node, "--import", "./json-import.mjs", "parse-workflows.mjs"]
    result = run([*parse, *map(str, WORKFLOWS)], cwd=NPM)
    assert result.returncode == 0, result.stdout + result.stderr
    # The parser does read the contexts of `if:` (a job's `if:` cannot read secrets).
    bad = REPO / ".local" / "workflow-parser-probe.yml"
    bad.parent.mkdir(exist_ok=True)
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    if: secrets.X != ''\n"
        "    steps:\n      - run: 'true'\n",
        encoding="utf-8",
    )
    try:
        result = run([*parse, str(bad)], cwd=NPM)
    finally:
        bad.unlink()
    assert result.returncode == 1 and "Unrecognized named-value: 'secrets'" in result.stdout


def test_zizmor_finds_nothing_above_low() -> None:
    result = run([tool("zizmor"), "--offline", "--min-severity", "medium", ".github/"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_passes_on_every_run_block(tmp_path: Path) -> None:
    files = []
    for index, script in enumerate(scripts()):
        assert "${{" not in script.text, f"{script.where}: expressions reach run: only via env"
        file = tmp_path / f"{index}.sh"
        # Variables the step sets in env: are defined for shellcheck, as GitHub defines them.
        defined = "".join(f': "${{{name}:=}}"\n' for name in sorted(script.env) if "-" not in name)
        file.write_text(f"# {script.where}\n{defined}{script.text}", encoding="utf-8")
        files.append(str(file))
    assert len(files) > 20
    result = run([tool("shellcheck"), "--shell=bash", "--severity=style", *files])
    assert result.returncode == 0, result.stdout


def test_third_party_actions_are_pinned_to_a_commit_with_its_version() -> None:
    texts = {p: p.read_text(encoding="utf-8") for p in [*WORKFLOWS, *ACTIONS]}
    used = list(third_party_uses())
    assert used
    for where, uses in used:
        assert PINNED.match(uses), f"{where}: {uses} is not pinned to a full commit SHA"
        line = next(line for t in texts.values() for line in t.splitlines() if uses in line)
        assert re.search(r"# v\d+\.\d+\.\d+$", line), f"{where}: {uses} has no `# vX.Y.Z`"
    # One version of each action everywhere, so that Dependabot moves them together.
    versions: dict[str, set[str]] = {}
    for _, uses in used:
        name, sha = uses.split("@")
        versions.setdefault(name, set()).add(sha)
    assert all(len(shas) == 1 for shas in versions.values()), versions


def test_every_action_has_a_declared_local_stand_in() -> None:
    declared = {k.lower() for k in yaml.safe_load(STAND_INS.read_text())["actions"]}
    used = {uses.split("@")[0].lower() for _, uses in third_party_uses()}
    assert used == declared, f"used but not declared: {used - declared}; unused: {declared - used}"


def test_permissions_are_empty_at_the_top_and_granted_per_job() -> None:
    for path in WORKFLOWS:
        data = load(path)
        assert data.get("permissions") == {}, f"{path.name}: top-level permissions: {{}}"
        for job_id, job in data["jobs"].items():
            assert "permissions" in job, f"{path.name} job {job_id} grants nothing explicitly"
            grants = job["permissions"] or {}
            if grants.get("id-token") == "write":  # OIDC only where a cluster login happens
                called = (REPO / job["uses"]).read_text() if "uses" in job else path.read_text()
                assert "./.github/actions/connect" in called, f"{path.name} job {job_id}"


def test_every_job_has_a_timeout() -> None:
    for path in WORKFLOWS:
        for job_id, job in load(path)["jobs"].items():
            if "uses" not in job:  # a called workflow's jobs carry their own
                assert "timeout-minutes" in job, f"{path.name} job {job_id} has no timeout"


def test_deploy_jobs_queue_per_environment_and_are_never_cancelled() -> None:
    for name in ("_deploy.yml", "_canary.yml", "_rollback.yml"):
        job = next(iter(load(GITHUB / "workflows" / name)["jobs"].values()))
        assert job["environment"] == "${{ inputs.environment }}"
        assert job["concurrency"]["cancel-in-progress"] is False
        assert "${{ inputs.environment }}" in job["concurrency"]["group"]
    assert load(GITHUB / "workflows" / "deploy.yml")["concurrency"]["cancel-in-progress"] is False


def test_a_forker_finds_every_value_to_change() -> None:
    text = "".join(p.read_text() for p in [*WORKFLOWS, *ACTIONS])
    for value in ("ROLLOUT_BACKEND", "IMAGE_REGISTRY", "IMAGE_NAME", "PRODUCTION_URL", "branches"):
        lines = [line for line in text.splitlines() if value in line and "TODO: update" in line]
        assert lines, f"no `# TODO: update` marks {value}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_steps_name_their_shell_and_actions_only_through_files(path: Path) -> None:
    for where, step, _ in steps(path):
        assert "run" in step or "uses" in step, where
        assert step.get("shell", "bash") == "bash", f"{where}: the local runner runs bash"
