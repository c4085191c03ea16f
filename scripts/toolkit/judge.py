"""The judge: compares canary with stable on every policy metric and decides.

Per metric it estimates both arms' means, then asks two always-valid questions (see
`stats.py`) at level alpha / k, k being the number of critical tests (Bonferroni, so the
whole analysis keeps its false-rollback rate under alpha):

- relative: is the canary worse than stable by more than the margin? (`fail` when the whole
  confidence sequence of the difference lies beyond the margin; `pass` when it lies within);
- absolute: is the canary beyond its `limit`? (same reading on the canary's own interval).

Rates (errors, slow answers, ratings) are tested with the variance at the value under test
(`stats.py`), so a canary with few events is not taken for certain. A margin relative to the
stable mean (`max_relative_regression`) moves with the stable estimate, so its test also counts
the stable arm's variance, (1 + r)² times; the reported interval is that wider one.

A metric with fewer than `min_samples` observations in either arm is `insufficient` and
decides nothing; a metric without data for an arm is `missing`. Decisions: `rollback` when a
critical metric fails; `promote` when every critical metric passes; `hold` otherwise (so too
little or missing data never promotes). Non-critical metrics are reported, never decisive.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from scripts.toolkit.analysis import Effect, Verdict, json_ready, margin
from scripts.toolkit.metrics import ArmData, Histogram, Observation, Ratio
from scripts.toolkit.policy import MetricPolicy, Policy
from scripts.toolkit.stats import (
    Estimate,
    compare,
    difference_log_lr,
    histogram_mean,
    interval,
    proportion,
)

Decision = Literal["promote", "rollback", "hold"]
METHOD = "always-valid (mixture SPRT confidence sequence)"


def estimate(observation: Observation) -> Estimate:
    """Mean and variance of the mean of one arm's observation."""
    if isinstance(observation, Ratio):
        return proportion(observation.hits, observation.total)
    if not isinstance(observation, Histogram):
        raise TypeError(f"cannot estimate a {type(observation).__name__}")
    return histogram_mean(observation.bounds, observation.counts, observation.total)


@dataclass
class MetricVerdict:
    """Everything the decision record shows for one metric."""

    name: str
    critical: bool
    direction: str
    verdict: Verdict
    reason: str
    stable_value: float | None = None
    canary_value: float | None = None
    stable_n: float = 0.0
    canary_n: float = 0.0
    effect: Effect | None = None  # canary - stable (see relative margins for its interval)
    margin: float | None = None
    limit: float | None = None
    statistic: float | None = None  # ln Λ against "worse by exactly the margin"
    threshold: float | None = None  # ln(1 / alpha_test): the statistic that means "worse"
    alpha: float | None = None


@dataclass
class Judgement:
    """The judge's decision with a verdict per metric."""

    decision: Decision
    reasons: list[str]
    metrics: list[MetricVerdict] = field(default_factory=list)

    @property
    def no_harm(self) -> bool:
        """Every critical metric has enough data and none is worse than allowed (some may not
        yet be shown within their margins)."""
        return all(m.verdict in ("pass", "inconclusive") for m in self.metrics if m.critical)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (NaN and infinities as None)."""
        metrics = [{**asdict(m), "effect": m.effect} for m in self.metrics]
        return json_ready({"decision": self.decision, "reasons": self.reasons, "metrics": metrics})


def critical_tests(policy: Policy) -> int:
    """How many tests can roll back (one per margin, one per limit, on critical metrics)."""
    count = sum(int(m.has_margin) + int(m.limit is not None) for m in policy.metrics if m.critical)
    return max(count, 1)


def judge_metric(
    policy: Policy,
    metric: MetricPolicy,
    stable: Observation | None,
    canary: Observation | None,
    *,
    alpha: float,
) -> MetricVerdict:
    """One metric's verdict."""
    result = MetricVerdict(
        name=metric.name,
        critical=metric.critical,
        direction=metric.direction,
        verdict="missing",
        reason="no data for one of the arms",
        limit=metric.limit,
        alpha=alpha,
    )
    if stable is None or canary is None:
        return result
    s, c = estimate(stable), estimate(canary)
    result.stable_value, result.canary_value = s.mean, c.mean
    result.stable_n, result.canary_n = s.n, c.n
    need = policy.samples_needed(metric)
    if s.n < need or c.n < need:
        short, have = ("canary", c.n) if c.n < need else ("stable", s.n)
        result.verdict, result.reason = "insufficient", f"{short} has {have:.0f} of {need} samples"
        return result
    # A margin relative to the stable mean moves with the stable estimate: the test is then on
    # canary - (1 ± r) · stable, whose variance carries the stable arm's share up to (1 + r)².
    weight = (1 + (metric.max_relative_regression or 0.0)) ** 2
    cmp = compare(s, c, tau=metric.tau, alpha=alpha, stable_weight=weight)
    effect = Effect(cmp.diff, cmp.low, cmp.high, 1 - alpha, METHOD, c.n)
    result.effect, result.threshold = effect, math.log(1 / alpha)
    allowed = result.margin = margin(metric, s.mean)
    failures, unknown = [], []
    if allowed is not None:
        sign = 1.0 if metric.direction == "lower_is_better" else -1.0
        result.statistic = difference_log_lr(
            s, c, tau=metric.tau, null=sign * allowed, stable_weight=weight
        )
        reading = effect.read(metric.direction, allowed=allowed)
        if reading == "fail":
            failures.append(f"worse than stable by more than {allowed:.4g}")
        elif reading == "inconclusive":
            unknown.append("difference not yet within the margin")
    if metric.limit is not None:
        low, high = interval(c, tau=metric.tau, alpha=alpha)
        own = Effect(c.mean, low, high, 1 - alpha, METHOD, c.n)
        reading = own.read(metric.direction, beyond=metric.limit)
        word = "above" if metric.direction == "lower_is_better" else "below"
        if reading == "fail":
            failures.append(f"{word} the limit {metric.limit:.4g}")
        elif reading == "inconclusive":
            unknown.append(f"not yet clear of the limit {metric.limit:.4g}")
    if failures:
        result.verdict, result.reason = "fail", "; ".join(failures)
    elif unknown:
        result.verdict, result.reason = "inconclusive", "; ".join(unknown)
    else:
        result.verdict, result.reason = "pass", "within the margin and the limit"
    return result


def judge(policy: Policy, stable: ArmData, canary: ArmData) -> Judgement:
    """Compare the arms on every policy metric and decide promote, rollback or hold."""
    alpha = policy.alpha / critical_tests(policy)
    verdicts = [
        judge_metric(policy, m, stable.get(m.name), canary.get(m.name), alpha=alpha)
        for m in policy.metrics
    ]
    critical = [v for v in verdicts if v.critical]
    failed = [v for v in critical if v.verdict == "fail"]
    if failed:
        return Judgement("rollback", [f"{v.name}: {v.reason}" for v in failed], verdicts)
    if all(v.verdict == "pass" for v in critical):
        return Judgement("promote", ["every critical metric passed"], verdicts)
    waiting = [f"{v.name}: {v.reason}" for v in critical if v.verdict != "pass"]
    return Judgement("hold", waiting, verdicts)
