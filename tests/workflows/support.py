"""The repository's workflow files, and every bash script they run, for the workflow tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from contract.files import REPO_ROOT as REPO
from scripts.toolkit.workflow.model import load_workflow

GITHUB = REPO / ".github"
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.yml"))
ACTIONS = sorted((GITHUB / "actions").glob("*/action.yml"))
STAND_INS = GITHUB / "local-stand-ins.yaml"
NPM = REPO / "tools" / "npm"


@dataclass(frozen=True)
class Script:
    """One `run:` block: where it is, its text and the env names its step sets."""

    where: str
    text: str
    env: frozenset[str]


def load(path: Path) -> dict[str, Any]:
    if path.name == "action.yml":
        data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        return data
    return load_workflow(path)


def steps(path: Path) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(where, step, job-or-action) for each step of a workflow's jobs or a composite action."""
    data = load(path)
    name = path.relative_to(REPO)
    if path.name == "action.yml":
        for index, step in enumerate(data["runs"]["steps"]):
            yield f"{name} step {index + 1}", step, data
        return
    for job_id, job in data["jobs"].items():
        for index, step in enumerate(job.get("steps") or []):
            yield f"{name} job {job_id} step {index + 1}", step, job


def scripts() -> Iterator[Script]:
    """Every bash script of the workflows, the composite actions and the stand-ins."""
    for path in [*WORKFLOWS, *ACTIONS]:
        for where, step, job in steps(path):
            if "run" in step:
                env = {*(job.get("env") or {}), *(step.get("env") or {})}
                yield Script(where, str(step["run"]), frozenset(env))
    stand_ins = yaml.safe_load(STAND_INS.read_text(encoding="utf-8"))["actions"]
    for action, entry in stand_ins.items():
        if "run" in entry:
            yield Script(f"{STAND_INS.name} {action}", entry["run"], frozenset())


def third_party_uses() -> Iterator[tuple[str, str]]:
    """(where, uses) of every action that is not a file of this repository."""
    for path in [*WORKFLOWS, *ACTIONS]:
        for where, step, _ in steps(path):
            uses = str(step.get("uses", ""))
            if uses and not uses.startswith("./"):
                yield where, uses
