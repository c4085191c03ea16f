"""canary - production on each metric, and the guardrails that may veto a winner."""

from __future__ import annotations

from dataclasses import dataclass

from scripts.toolkit.experiment.specs import MetricSpec
from scripts.toolkit.experiment.variant_stats import mean_or_none
from scripts.toolkit.policy import MetricPolicy
from scripts.toolkit.stats import Estimate, compare


@dataclass
class Comparison:
    """canary - production on one metric, with its always-valid interval and a reading."""

    name: str
    direction: str
    production: float | None
    canary: float | None
    n_production: float
    n_canary: float
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    better: str | None  # "canary", "production", or None while the interval holds zero
    data_factor: float | None  # roughly how many times today's data a decision needs
    reading: str


@dataclass
class GuardrailCheck:
    """A policy metric that may veto the winner."""

    name: str
    margin: float | None
    winner_worse_by: float | None  # the winner's difference in the worse direction
    ci: tuple[float, float] | None
    blocks: bool
    reading: str


def compare_metric(
    spec: MetricSpec, production: Estimate, canary: Estimate, alpha: float
) -> Comparison:
    """canary - production on `spec`, read against zero."""
    result = Comparison(
        name=spec.name,
        direction=spec.direction,
        production=mean_or_none(production),
        canary=mean_or_none(canary),
        n_production=production.n,
        n_canary=canary.n,
        difference=None,
        ci_low=None,
        ci_high=None,
        better=None,
        data_factor=None,
        reading="no data in one of the variants",
    )
    if production.n <= 0 or canary.n <= 0:
        return result
    cmp = compare(production, canary, tau=spec.tau, alpha=alpha)
    result.difference, result.ci_low, result.ci_high = cmp.diff, cmp.low, cmp.high
    higher = spec.direction == "higher_is_better"
    if cmp.low > 0 or cmp.high < 0:
        result.better = "canary" if (cmp.low > 0) == higher else "production"
        result.reading = f"{result.better} is better (interval excludes 0)"
        return result
    radius = (cmp.high - cmp.low) / 2
    if cmp.diff == 0:
        result.reading = "no difference measured"
        return result
    # The interval shrinks about as 1/sqrt(n): if the difference holds, a decision needs about
    # (radius / |diff|)^2 times today's data (a lower bound: the log term grows slowly too).
    result.data_factor = (radius / abs(cmp.diff)) ** 2
    result.reading = f"interval holds 0: about {result.data_factor:.1f}x the data if it holds"
    return result


def check_guardrail(
    metric: MetricPolicy, winner: Estimate, other: Estimate, *, alpha: float
) -> GuardrailCheck:
    """Blocks when the winner is worse than the other variant beyond the policy's margin."""
    allowed = metric.margin(other.mean) if other.n > 0 else None
    if winner.n <= 0 or other.n <= 0:
        return GuardrailCheck(metric.name, allowed, None, None, False, "no data")
    cmp = compare(other, winner, tau=metric.tau, alpha=alpha)
    sign = metric.worse_sign
    worse_low, worse_high = sorted((sign * cmp.low, sign * cmp.high))
    limit = allowed or 0.0
    blocks = worse_low > limit
    if blocks:
        reading = f"significantly worse by more than {limit:.4g}"
    elif worse_high > limit:
        reading = "not yet clear of the margin (does not block)"
    else:
        reading = "within the margin"
    return GuardrailCheck(
        metric.name, allowed, sign * cmp.diff, (cmp.low, cmp.high), blocks, reading
    )
