"""The winner rule: sample ratio first, then the primary metric, then the guardrails.

Reading rules, in order:

1. Sample ratio mismatch (SRM, `srm.py`): when the users per variant do not match the
   configured split, no comparison can be trusted and no winner is declared.
2. Every comparison is canary - production with an always-valid confidence sequence
   (`stats.compare`, in `compare_metric` and `check_guardrail`): the report may be re-read at
   any time, as often as one likes, without inflating the false-winner rate. Each metric's
   mixing scale tau is fixed by the policy, before data.
3. A winner needs its primary metric (the policy's `experiment.primary`) to be better, the
   interval of the difference excluding zero in its favour, with at least `min_samples` in
   both variants, and no guardrail (`experiment.guardrails`, rollout metrics) failing for it:
   shown worse than the other variant beyond the policy's margin, the reading the canary
   judge uses (`analysis.Effect.read`). With enough traffic every difference becomes
   significant; a guardrail protects against the harm the policy says matters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from scripts.toolkit.analysis import Effect, Verdict, json_ready, margin
from scripts.toolkit.experiment.srm import SampleRatio, sample_ratio_check
from scripts.toolkit.experiment.variant_stats import VARIANT_QUERIES, VariantStats, variant_stats
from scripts.toolkit.judge import estimate
from scripts.toolkit.metrics import Arm, ArmData, MetricQuery
from scripts.toolkit.policy import ExperimentPolicy, MetricPolicy, Policy
from scripts.toolkit.stats import Estimate, compare


@dataclass(frozen=True)
class Variants:
    """The two versions of a prompt under test and the canary's configured share."""

    prompt: str
    production: str
    canary: str
    canary_percentage: float
    source: str

    def arms(self) -> list[Arm]:
        return [
            Arm(name=v, labels={"prompt": self.prompt, "prompt_version": v})
            for v in (self.production, self.canary)
        ]


METHOD = "always-valid (mixture SPRT confidence sequence)"


def _mean(e: Estimate) -> float | None:
    return e.mean if e.n > 0 and math.isfinite(e.mean) else None


@dataclass
class Comparison:
    """canary - production on one metric, with its always-valid interval and a reading."""

    name: str
    direction: str
    production: float | None
    canary: float | None
    n_production: float
    n_canary: float
    effect: Effect | None
    better: str | None  # "canary", "production", or None while the interval holds zero
    data_factor: float | None  # roughly how many times today's data a decision needs
    reading: str

    def to_dict(self) -> dict[str, Any]:
        return json_ready({**asdict(self), "effect": self.effect})


@dataclass
class GuardrailCheck:
    """A rollout metric that may veto the winner: `fail` when the winner is shown worse than
    the other variant beyond the policy's margin."""

    name: str
    margin: float | None
    effect: Effect | None  # winner - other
    verdict: Verdict
    reading: str

    @property
    def blocks(self) -> bool:
        """Whether it vetoes the winner."""
        return self.verdict == "fail"

    def to_dict(self) -> dict[str, Any]:
        return json_ready({**asdict(self), "effect": self.effect, "blocks": self.blocks})


def compare_metric(
    metric: MetricPolicy, production: Estimate, canary: Estimate, alpha: float
) -> Comparison:
    """canary - production on `metric`, read against zero."""
    result = Comparison(
        metric.name, metric.direction, _mean(production), _mean(canary), production.n, canary.n,
        None, None, None, "no data in one of the variants",
    )  # fmt: skip
    if production.n <= 0 or canary.n <= 0:
        return result
    cmp = compare(production, canary, tau=metric.tau, alpha=alpha)
    result.effect = Effect(cmp.diff, cmp.low, cmp.high, 1 - alpha, METHOD, canary.n)
    least, most = result.effect.worse_by(metric.direction)
    if least > 0 or most < 0:
        result.better = "production" if least > 0 else "canary"
        result.reading = f"{result.better} is better (interval excludes 0)"
    elif cmp.diff == 0:
        result.reading = "no difference measured"
    else:
        # The interval shrinks about as 1/sqrt(n): if the difference holds, a decision needs
        # about (radius / |diff|)^2 times today's data (a lower bound: the log term grows too).
        result.data_factor = ((cmp.high - cmp.low) / 2 / abs(cmp.diff)) ** 2
        result.reading = f"interval holds 0: about {result.data_factor:.1f}x the data if it holds"
    return result


def check_guardrail(
    metric: MetricPolicy, winner: Estimate, other: Estimate, *, alpha: float
) -> GuardrailCheck:
    """Blocks when the winner is shown worse than the other variant beyond the policy's margin."""
    allowed = margin(metric, other.mean) if other.n > 0 else None
    if winner.n <= 0 or other.n <= 0:
        return GuardrailCheck(metric.name, allowed, None, "missing", "no data")
    cmp = compare(other, winner, tau=metric.tau, alpha=alpha)
    effect = Effect(cmp.diff, cmp.low, cmp.high, 1 - alpha, METHOD, winner.n)
    limit = allowed or 0.0
    verdict = effect.read(metric.direction, allowed=limit)
    reading = {
        "fail": f"significantly worse by more than {limit:.4g}",
        "inconclusive": "not yet clear of the margin (does not block)",
        "pass": "within the margin",  # nosec B105  # a verdict word, not a password
    }[verdict]
    return GuardrailCheck(metric.name, allowed, effect, verdict, reading)


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
    guardrails: list[GuardrailCheck] = field(default_factory=list)
    status: Literal["winner", "inconclusive", "srm"] = "inconclusive"
    winner: str | None = None
    winner_role: str | None = None
    reasons: list[str] = field(default_factory=list)
    next_command: str | None = None
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, non-finite numbers as None."""
        v = self.variants
        return json_ready(
            {
                "status": self.status,
                "winner": self.winner,
                "winner_role": self.winner_role,
                "reasons": self.reasons,
                "next_command": self.next_command,
                "prompt": v.prompt,
                "production": v.production,
                "canary": v.canary,
                "canary_percentage": v.canary_percentage,
                "variants_from": v.source,
                "metrics_from": self.source,
                "primary": self.primary,
                "alpha": self.alpha,
                "min_samples": self.min_samples,
                "srm": self.srm.__dict__,
                "variants": [s.to_dict() for s in self.stats],
                "comparisons": {c.name: c.to_dict() for c in self.comparisons},
                "guardrails": {g.name: g.to_dict() for g in self.guardrails},
            }
        )


def queries(policy: Policy, experiment: ExperimentPolicy) -> list[MetricQuery]:
    """Everything the report reads: users, answers, durations, compared metrics, guardrails."""
    measures = policy.measures(rollout_only=False)
    names = dict.fromkeys([*experiment.compare, *experiment.guardrails])
    return [*VARIANT_QUERIES, *(measures[n].query() for n in names)]


def analyze(
    data: Mapping[str, ArmData],
    variants: Variants,
    *,
    policy: Policy,
    experiment: ExperimentPolicy,
    min_samples: int | None = None,
) -> ExperimentReport:
    """Read the experiment from per-variant totals (`data` keyed by version, then query)."""
    measures = policy.measures(rollout_only=False)
    compared = [measures[n] for n in experiment.compare]
    alpha, primary = policy.alpha, experiment.primary
    needed = min_samples if min_samples is not None else policy.min_samples
    prod, can = variants.production, variants.canary
    stats = [
        variant_stats(prod, "production", data[prod], compared, alpha=alpha),
        variant_stats(can, "canary", data[can], compared, alpha=alpha),
    ]
    share = variants.canary_percentage / 100
    srm = sample_ratio_check(
        {prod: stats[0].users, can: stats[1].users}, {prod: 1 - share, can: share}
    )
    comparisons = [
        compare_metric(m, estimate(data[prod][m.name]), estimate(data[can][m.name]), alpha)
        for m in compared
    ]
    report = ExperimentReport(variants, primary, alpha, needed, stats, srm, comparisons)
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
            measures[g], estimate(data[winner][g]), estimate(data[loser][g]), alpha=alpha
        )
        for g in experiment.guardrails
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
