"""What one evaluation found (both arms as run, every case's scores, the gate's verdicts), and
its registry record `models/<model>/<version>/evaluation.json`, written atomically."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contract.files import atomic_write
from contract.registry.loader import RegistryError, load_registry
from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.evaluation.dataset import Dataset
from scripts.toolkit.evaluation.gate import ScoreResult, Status
from scripts.toolkit.evaluation.scoring import CaseResult


@dataclass
class ArmSummary:
    """One arm as run: where, what was pinned, what actually served it, how many failed."""

    role: str
    url: str
    pinned: str | None
    app_version: str
    git_sha: str
    served_versions: list[str]
    models: list[str]
    errors: int

    def label(self) -> str:
        """Short name for tables: the served prompt version, or the URL's app version."""
        versions = ", ".join(self.served_versions) or self.pinned or "?"
        return f"{versions} @ {self.app_version}"


@dataclass
class Evaluation:
    """Everything one run found."""

    prompt: str
    dataset: Dataset
    alpha: float
    candidate: ArmSummary
    baseline: ArmSummary
    cases: list[CaseResult]
    scores: list[ScoreResult]
    categories: dict[str, list[ScoreResult]]
    status: Status
    failures: list[str]
    seconds: float
    evaluated_at: str = field(
        default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds")
    )

    def to_dict(self) -> dict[str, Any]:
        """The JSON envelope's `data`."""
        return {
            "status": self.status,
            "failures": self.failures,
            "prompt": self.prompt,
            "alpha": self.alpha,
            "dataset": self.dataset.to_dict(),
            "candidate": self.candidate.__dict__,
            "baseline": self.baseline.__dict__,
            "scores": {s.name: s.to_dict() for s in self.scores},
            "categories": {
                name: {s.name: s.to_dict() for s in scores}
                for name, scores in self.categories.items()
            },
            "cases": [
                {
                    "id": r.case.id,
                    "category": r.case.category,
                    "candidate": r.candidate,
                    "baseline": r.baseline,
                    "candidate_error": r.candidate_error,
                    "baseline_error": r.baseline_error,
                }
                for r in self.cases
            ],
            "seconds": round(self.seconds, 3),
            "evaluated_at": self.evaluated_at,
        }


def write_record(evaluation: Evaluation, target: str, *, registry_dir: Path, policy: Path) -> Path:
    """Write the candidate's record to `target` (`auto`: its model folder in `registry_dir`)
    atomically, then check that the registry still loads when the file is inside it."""
    cand, base = evaluation.candidate, evaluation.baseline
    if len(cand.models) != 1:
        found = ", ".join(cand.models) or "none (every request failed)"
        raise ToolkitError(
            f"the {cand.role} answers came from {found}; an evaluation.json records one model."
        )
    name, _, version = cand.models[0].partition("@")
    path = _path(target, registry_dir=registry_dir, name=name, version=version)
    record = {
        "schema_version": 1,
        "model": name,
        "version": version,
        "prompt": {"name": evaluation.prompt, "version": ", ".join(cand.served_versions)},
        "app_version": cand.app_version,
        "evaluated_at": evaluation.evaluated_at,
        "dataset": evaluation.dataset.to_dict(),
        "scores": {s.name: s.candidate.to_dict() for s in evaluation.scores},
        "baseline": {
            "prompt": {"name": evaluation.prompt, "version": ", ".join(base.served_versions)},
            "models": base.models,
            "app_version": base.app_version,
            "url": base.url,
            "scores": {s.name: s.baseline.to_dict() for s in evaluation.scores},
        },
        "comparison": {s.name: s.comparison() for s in evaluation.scores},
        "gate": {
            "status": evaluation.status,
            "passed": evaluation.status == "pass",
            "failures": evaluation.failures,
            "alpha": evaluation.alpha,
            "policy": str(policy),
        },
        "errors": {"candidate": cand.errors, "baseline": base.errors},
        "tool": "python -m scripts.evaluate_quality",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(record, indent=2, allow_nan=False) + "\n")
    if path.resolve().is_relative_to(registry_dir.resolve()):
        try:
            load_registry(registry_dir)
        except RegistryError as exc:
            raise ToolkitError(f"wrote {path}, but the registry no longer loads: {exc}") from exc
    return path


def _path(target: str, *, registry_dir: Path, name: str, version: str) -> Path:
    if target == "auto":
        folder = registry_dir / "models" / name / version
        if not (folder / "config.yaml").is_file():
            raise ToolkitError(
                f"{folder} has no config.yaml; register {name}@{version} in {registry_dir} first."
            )
        return folder / "evaluation.json"
    path = Path(target)
    parts = path.parts
    if len(parts) >= 4 and parts[-4] == "models" and (parts[-3], parts[-2]) != (name, version):
        raise ToolkitError(
            f"{path} belongs to {parts[-3]}@{parts[-2]}, but the candidate ran on "
            f"{name}@{version}; use --write-evaluation auto."
        )
    return path
