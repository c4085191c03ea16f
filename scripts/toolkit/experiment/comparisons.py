"""canary - production on each compared metric, and the guardrails that may veto a winner."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from scripts.toolkit.analysis import Effect, Verdict, json_ready, margin
from scripts.toolkit.policy import MetricPolicy
from scripts.toolkit.stats import Estimate, compare

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
        "pass": "within the margin",
    }[verdict]
    return GuardrailCheck(metric.name, allowed, effect, verdict, reading)
