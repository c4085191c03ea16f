"""What a workflow run is made of: its settings, the workflow file read and ordered, the
results of jobs and steps, typed inputs, and the files a step writes (GITHUB_OUTPUT, ...)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.workflow.standins import StandIn


@dataclass
class Settings:
    """A run's event, variables and secrets, and how it is driven."""

    workspace: Path
    event: str
    sha: str
    ref: str
    stand_ins: dict[str, StandIn]
    before: str = ""  # a push's github.event.before: the commit it follows
    inputs: dict[str, str] = field(default_factory=dict)
    vars: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    # environment name -> {"vars": {...}, "secrets": {...}}
    environments: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    assume_success: frozenset[str] = frozenset()
    cancel_after: dict[str, float] = field(default_factory=dict)  # job path -> seconds
    log: Callable[[str], None] = print


@dataclass
class StepResult:
    name: str
    outcome: str  # success, failure, skipped
    conclusion: str
    seconds: float = 0.0


@dataclass
class JobResult:
    """A job as `needs.<job>` shows it, with what the run printed about it."""

    path: str  # caller/inner for jobs of a reusable workflow
    result: str  # success, failure, cancelled, skipped
    outputs: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    steps: list[StepResult] = field(default_factory=list)
    summary: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "outputs": self.outputs,
            "seconds": round(self.seconds, 1),
            "steps": [s.__dict__ for s in self.steps],
        }


@dataclass
class Annotation:
    level: str
    job: str
    title: str
    message: str


@dataclass
class Called:
    """The workflow being run and what it was called with."""

    path: Path
    data: dict[str, Any]
    inputs: dict[str, Any]
    secrets: dict[str, str]
    prefix: str = ""


def load_workflow(path: Path) -> dict[str, Any]:
    """A workflow file as data (YAML 1.1 reads the `on:` key as True: it is put back)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ToolkitError(f"cannot read the workflow {path}: {exc}.") from exc
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), dict):
        raise ToolkitError(f"{path} is not a workflow: it has no `jobs:` mapping.")
    if True in data:
        data["on"] = data.pop(True)
    return data


def job_order(jobs: dict[str, Any]) -> list[str]:
    """Job ids so that each comes after the jobs it needs."""
    order: list[str] = []
    pending = list(jobs)
    while pending:
        ready = [j for j in pending if set(needs_of(jobs[j])) <= set(order)]
        if not ready:
            unknown = {n for j in pending for n in needs_of(jobs[j])} - set(jobs)
            why = f"unknown jobs {sorted(unknown)}" if unknown else "a cycle"
            raise ToolkitError(f"the jobs' `needs` cannot be ordered: {why}.")
        order.append(ready[0])
        pending.remove(ready[0])
    return order


def needs_of(job: dict[str, Any]) -> list[str]:
    needs = job.get("needs", [])
    return [needs] if isinstance(needs, str) else list(needs)


def read_commands_file(path: Path) -> dict[str, str]:
    """GITHUB_OUTPUT / GITHUB_ENV: `name=value` lines and `name<<DELIMITER` blocks."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    lines = iter(path.read_text(encoding="utf-8").splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            block: list[str] = []
            for item in lines:
                if item == delimiter:
                    break
                block.append(item)
            else:
                raise ToolkitError(f"{path.name}: no closing {delimiter!r} for {name!r}.")
            values[name] = "\n".join(block)
        elif "=" in line:
            name, value = line.split("=", 1)
            values[name] = value
        elif line.strip():
            raise ToolkitError(f"{path.name}: {line!r} is neither name=value nor name<<EOF.")
    return values


@dataclass
class JobState:
    """A running job: its env (GITHUB_ENV adds to it), PATH additions, temp folder, limits."""

    path: str
    env: dict[str, Any]
    path_entries: list[str]
    temp: Path
    deadline: float
    cancel_deadline: float | None
    groups: list[int] = field(default_factory=list)
    cancelled: bool = False  # this job was cancelled (its step signalled)
    timed_out: bool = False
    started_cancelled: bool = False  # it started after the run was cancelled
    condition: str = ""  # its `if:`, re-evaluated when the run is cancelled
    context: dict[str, Any] = field(default_factory=dict)
    survives: bool | None = None


def typed_inputs(declared: dict[str, Any], given: dict[str, Any], file: Path) -> dict[str, Any]:
    """Inputs with their defaults and declared types; unknown or missing required ones refused."""
    unknown = set(given) - set(declared)
    if unknown:
        raise ToolkitError(f"{file.name} has no input {sorted(unknown)[0]!r}.")
    values: dict[str, Any] = {}
    for name, declaration in declared.items():
        spec = declaration or {}
        if name not in given:
            if spec.get("required") and "default" not in spec:
                raise ToolkitError(f"{file.name} requires the input {name!r}.")
            value: Any = spec.get("default", "")
        else:
            value = given[name]
        kind = spec.get("type", "string")
        if kind == "boolean":
            value = value if isinstance(value, bool) else str(value).lower() == "true"
        elif kind == "number":
            try:
                value = float(value) if value not in ("", None) else 0
            except (TypeError, ValueError):
                raise ToolkitError(
                    f"{file.name}: input {name!r} must be a number, not {value!r}."
                ) from None
            value = int(value) if float(value).is_integer() else value
        elif kind == "choice" and spec.get("options") and value not in spec["options"]:
            raise ToolkitError(
                f"{file.name}: input {name!r} must be one of {spec['options']}, not {value!r}."
            )
        else:
            value = text_of(value) if kind != "boolean" else value
        values[name] = value
    return values


def text_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value)
    return "" if value is None else str(value)
