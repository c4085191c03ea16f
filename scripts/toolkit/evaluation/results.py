"""What one evaluation found: both arms as run, every case's scores, the gate's verdicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from scripts.toolkit.cli import EXIT_FAILED, EXIT_INCONCLUSIVE, EXIT_OK
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

    @property
    def exit_code(self) -> int:
        """0 pass, 1 gate failed, 3 inconclusive."""
        return {"pass": EXIT_OK, "fail": EXIT_FAILED, "inconclusive": EXIT_INCONCLUSIVE}[
            self.status
        ]

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
