"""The winner rule: sample ratio first, then the primary metric, then the guardrails.

Reading rules, in order:

1. Sample ratio mismatch (SRM, `srm.py`): when the users per variant do not match the
   configured split, no comparison can be trusted and no winner is declared.
2. Every comparison is canary - production with an always-valid confidence sequence
   (`stats.compare`): the report may be re-read at any time, as often as one likes, without
   inflating the false-winner rate. Each metric's mixing scale tau is fixed (`specs.py`),
   before data.
3. A winner needs its primary metric (quality by default) to be better, the interval of the
   difference excluding zero in its favour, with at least `min_samples` in both variants, and
   no guardrail significantly worse for it. Guardrails are rollout-policy metrics (by default
   `error_rate` and `slow_answers`, the share of answers over 0.5 s); one is significantly
   worse when its whole interval lies beyond the policy's margin, the same reading the canary
   judge uses: with enough traffic every difference becomes significant, and a guardrail
   protects against the harm the policy says matters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from scripts.toolkit.cli import EXIT_FAILED, EXIT_INCONCLUSIVE, EXIT_OK, ToolkitError
from scripts.toolkit.experiment.comparisons import (
    Comparison,
    GuardrailCheck,
    check_guardrail,
    compare_metric,
)
from scripts.toolkit.experiment.specs import DEFAULT_GUARDRAILS, GUARDRAIL, METRICS
from scripts.toolkit.experiment.srm import SampleRatio, sample_ratio_check
from scripts.toolkit.experiment.variant_stats import VariantStats, variant_stats
from scripts.toolkit.experiment.variants import Variants
from scripts.toolkit.judge import estimate
from scripts.toolkit.metrics import ArmData
from scripts.toolkit.policy import Policy


@dataclass
class ExperimentReport:
    """The whole reading of an experiment."""

    variants: Variants
    primary: str
    alpha: float
    min_samples: int
    stats: list[VariantStats]
    srm: SampleRatio
    comparisons: list[Comparison]
    guardrails: list[GuardrailCheck]
    status: Literal["winner", "inconclusive", "srm"]
    winner: str | None
    winner_role: str | None
    reasons: list[str]
    next_command: str | None = None
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """0 winner, 1 sample ratio mismatch, 3 no winner yet."""
        return {"winner": EXIT_OK, "srm": EXIT_FAILED, "inconclusive": EXIT_INCONCLUSIVE}[
            self.status
        ]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, non-finite numbers as None."""
        data: dict[str, Any] = _clean(
            {
                "status": self.status,
                "winner": self.winner,
                "winner_role": self.winner_role,
                "reasons": self.reasons,
                "next_command": self.next_command,
                "prompt": self.variants.prompt,
                "production": self.variants.production,
                "canary": self.variants.canary,
                "canary_percentage": self.variants.canary_percentage,
                "variants_from": self.variants.source,
                "metrics_from": self.source,
                "primary": self.primary,
                "alpha": self.alpha,
                "min_samples": self.min_samples,
                "srm": asdict(self.srm),
                "variants": [asdict(s) for s in self.stats],
                "comparisons": {c.name: asdict(c) for c in self.comparisons},
                "guardrails": {g.name: asdict(g) for g in self.guardrails},
            }
        )
        return data


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def analyze(
    data: Mapping[str, ArmData],
    variants: Variants,
    *,
    policy: Policy,
    primary: str = "quality",
    guardrails: Sequence[str] = DEFAULT_GUARDRAILS,
    alpha: float | None = None,
    min_samples: int | None = None,
) -> ExperimentReport:
    """Read the experiment from per-variant totals (`data` keyed by version, then query)."""
    if primary not in METRICS:
        raise ToolkitError(f"--primary must be one of {', '.join(METRICS)}, not {primary!r}.")
    by_name = {m.name: m for m in policy.metrics}
    unknown = [g for g in guardrails if g not in by_name]
    if unknown:
        raise ToolkitError(
            f"guardrail '{unknown[0]}' is not a metric of the rollout policy "
            f"(it has: {', '.join(by_name)})."
        )
    alpha = alpha or policy.alpha
    needed = min_samples if min_samples is not None else policy.min_samples
    prod, can = variants.production, variants.canary
    stats = [
        variant_stats(prod, "production", data[prod], alpha=alpha),
        variant_stats(can, "canary", data[can], alpha=alpha),
    ]
    share = variants.canary_percentage / 100
    srm = sample_ratio_check(
        {prod: stats[0].users, can: stats[1].users}, {prod: 1 - share, can: share}
    )
    comparisons = [
        compare_metric(spec, estimate(data[prod][name]), estimate(data[can][name]), alpha)
        for name, spec in METRICS.items()
    ]
    report = ExperimentReport(
        variants=variants,
        primary=primary,
        alpha=alpha,
        min_samples=needed,
        stats=stats,
        srm=srm,
        comparisons=comparisons,
        guardrails=[],
        status="inconclusive",
        winner=None,
        winner_role=None,
        reasons=[],
    )
    if srm.flagged:
        report.status = "srm"
        report.reasons = [
            f"{srm.note}: users {stats[0].users:.0f} / {stats[1].users:.0f} against a "
            f"{100 - variants.canary_percentage:g}/{variants.canary_percentage:g} split; "
            "fix the assignment or the counting before reading any metric"
        ]
        return report
    main = next(c for c in comparisons if c.name == primary)
    counts = {"production": (prod, main.n_production), "canary": (can, main.n_canary)}
    short = [(r, v, n) for r, (v, n) in counts.items() if n < needed]
    if short:
        report.reasons = [
            f"{role} {version} has {n:.0f} of the {needed} {primary} observations needed"
            for role, version, n in short
        ]
        return report
    if main.better is None:
        report.reasons = [f"{primary}: {main.reading}"]
        return report
    winner, loser = (can, prod) if main.better == "canary" else (prod, can)
    report.guardrails = [
        check_guardrail(
            by_name[g],
            estimate(data[winner][GUARDRAIL + g]),
            estimate(data[loser][GUARDRAIL + g]),
            alpha=alpha,
        )
        for g in guardrails
    ]
    blocked = [g for g in report.guardrails if g.blocks]
    if blocked:
        report.reasons = [
            f"{main.better} {winner} is better on {primary} but {g.name} is {g.reading}"
            for g in blocked
        ]
        return report
    report.status, report.winner, report.winner_role = "winner", winner, main.better
    report.reasons = [f"{main.better} {winner} wins on {primary}: {main.reading}"]
    return report
