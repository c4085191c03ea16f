"""The judge: compares canary with stable on every policy metric and decides.

Per critical metric, up to two tests at level alpha / k (k: the critical tests plus the sample
ratio check; Bonferroni, so the whole analysis keeps its false-rollback rate under alpha):

- margin: is the canary worse than stable by more than the margin? The normal-mixture
  confidence sequence of the difference (`stats.py`), stratified by step: the arms are compared
  within each step (a constant weight) and the steps combined, so an outage or the time of day
  that hits both arms cancels out (cumulative totals across changing weights would not:
  Simpson's paradox). `fail` when the whole sequence lies beyond the margin, `pass` within;
- limit: is the canary's own mean beyond `limit`? An exact betting e-process (`eprocess.py`) on
  this step's answers, valid from the first answer (no sample floor), cheap enough to run at
  every fast check: a canary failing half its answers is caught after a handful. Each step
  runs its own test at alpha / k / (steps below 100). When stable breaches the limit too over
  the same step, the platform is degraded and rolling back would help nobody: the judge holds.

Sample ratio (with per-request assignment): did the canary get at least half its weight's share
of this step's answers? A betting e-process too; far less (crashing, refusing connections,
misrouted) rolls back. A margin test needs `min_samples` observations per arm (the normal
approximation); the exact tests need none. Decisions: `rollback` when a critical metric fails;
`promote` when every critical metric passes; `hold` otherwise (too little or missing data
never promotes here: the monitor decides what a step does when its time is up).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import reduce
from typing import Any, Literal

from scripts.toolkit.analysis import Effect, Verdict, json_ready, margin, worse_sign
from scripts.toolkit.eprocess import log_evalue
from scripts.toolkit.metrics import ArmData, Histogram, Observation, Ratio
from scripts.toolkit.policy import MetricPolicy, Policy
from scripts.toolkit.stats import (
    Estimate,
    compare,
    difference_log_lr,
    histogram_mean,
    pooled_stable_mean,
    proportion,
)

Decision = Literal["promote", "rollback", "hold"]
METHOD = "always-valid (mixture SPRT confidence sequence, stratified by step)"
Stratum = tuple[ArmData, ArmData]  # (stable, canary) over one step


def estimate(observation: Observation) -> Estimate:
    """Mean and variance of the mean of one arm's observation."""
    if isinstance(observation, Ratio):
        return proportion(observation.hits, observation.total)
    if not isinstance(observation, Histogram):
        raise TypeError(f"cannot estimate a {type(observation).__name__}")
    return histogram_mean(observation.bounds, observation.counts, observation.total)


def limit_evidence(metric: MetricPolicy, observation: Observation, *, breach: bool = True) -> float:
    """ln e-value that the arm's mean is beyond the metric's limit (`breach`), or within it."""
    worse = metric.direction == "lower_is_better"
    if isinstance(observation, Ratio):
        points = [(1.0, observation.hits), (0.0, observation.total - observation.hits)]
        low, high = 0.0, 1.0
    elif not observation.bounds:
        return 0.0  # nothing observed yet
    else:
        bounds = observation.bounds
        finite = [b for b in bounds if math.isfinite(b)]
        low, high = min(0.0, bounds[0]), finite[-1] if finite else 1.0
        # For rejecting, each observation sits at its bucket's edge least favourable to it.
        edges = zip((low, *bounds[:-1]), bounds, observation.counts, strict=True)
        points = [(lo if worse == breach else up, n) for lo, up, n in edges]
    null = metric.limit if metric.limit is not None else math.nan
    return log_evalue(points, null=null, low=low, high=high, higher_is_worse=worse == breach)


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
    limit_evidence: float | None = None  # ln e-value: canary beyond the limit (this step)
    limit_threshold: float | None = None
    degraded: bool = False  # stable breaches the limit too: the platform, not the canary

    def chart(self) -> dict[str, Any]:
        """What a chart of the rollout draws per check: the difference's interval, the margin,
        the canary's mean and its limit (None where not known)."""
        interval = self.effect.to_dict() if self.effect else {}
        figures = {k: interval.get(k) for k in ("estimate", "ci_low", "ci_high")}
        figures |= {"margin": self.margin, "canary": self.canary_value, "limit": self.limit}
        return json_ready(
            {**figures, "limit_evidence": self.limit_evidence, "verdict": self.verdict}
        )


@dataclass
class Judgement:
    """The judge's decision with a verdict per metric."""

    decision: Decision
    reasons: list[str]
    metrics: list[MetricVerdict] = field(default_factory=list)

    @property
    def no_harm(self) -> bool:
        """No critical metric is missing, worse than allowed or hidden by a degraded platform
        (some may have too few samples or not yet be shown within their margins)."""
        bad = ("fail", "missing")
        return not any(m.verdict in bad or m.degraded for m in self.metrics if m.critical)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (NaN and infinities as None)."""
        metrics = [{**asdict(m), "effect": m.effect} for m in self.metrics]
        return json_ready({"decision": self.decision, "reasons": self.reasons, "metrics": metrics})


def critical_tests(policy: Policy) -> int:
    """How many tests can roll back: one per margin and one per limit on critical metrics, and
    the sample ratio check."""
    count = sum(int(m.has_margin) + int(m.limit is not None) for m in policy.metrics if m.critical)
    return count + 1


def _total(observations: Sequence[Observation]) -> Observation:
    return reduce(lambda a, b: a.plus(b), observations)  # type: ignore[arg-type]


def _limit_test(
    policy: Policy,
    metric: MetricPolicy,
    stable: Observation,
    canary: Observation,
    result: MetricVerdict,
    alpha: float,
) -> tuple[list[str], list[str]]:
    """(failures, unknowns) of the exact limit test on this step; its figures go in `result`."""
    if metric.limit is None:
        return [], []
    threshold = math.log(policy.judged_steps / alpha)
    evidence = limit_evidence(metric, canary)
    result.limit_evidence, result.limit_threshold = evidence, threshold
    # Stable breaches too: shown, or at least its mean over the same time is beyond the limit
    # (equal arms race to the threshold; the canary must not lose that race to the outage).
    beyond = worse_sign(metric.direction) * (estimate(stable).mean - metric.limit) > 0
    if evidence >= threshold and (beyond or limit_evidence(metric, stable) >= threshold):
        result.degraded = True
        return [], [f"the platform is degraded: stable breaches {metric.name} too"]
    if evidence >= threshold:
        word = "above" if metric.direction == "lower_is_better" else "below"
        return [f"{word} the limit {metric.limit:.4g}"], []
    if limit_evidence(metric, canary, breach=False) < threshold:
        return [], [f"not yet clear of the limit {metric.limit:.4g}"]
    return [], []


def judge_metric(
    policy: Policy,
    metric: MetricPolicy,
    stable_now: Observation | None,
    canary_now: Observation | None,
    *,
    alpha: float,
    earlier: Sequence[tuple[Observation | None, Observation | None]] = (),
    fast: bool = False,
) -> MetricVerdict:
    """One metric's verdict on this step's data and the steps `earlier`. `fast`: only the exact
    limit test (the checks between full judgements)."""
    result = MetricVerdict(
        metric.name, metric.critical, metric.direction, "missing", "no data for one of the arms",
        limit=metric.limit, alpha=alpha,
    )  # fmt: skip
    if stable_now is None or canary_now is None:
        return result
    failures, unknown = _limit_test(policy, metric, stable_now, canary_now, result, alpha)
    pairs = [
        (s, c) for s, c in [*earlier, (stable_now, canary_now)] if s is not None and c is not None
    ]
    estimates = [(estimate(s), estimate(c)) for s, c in pairs]
    s, c = (estimate(_total(arm)) for arm in zip(*pairs, strict=True))
    result.stable_value, result.canary_value = s.mean, c.mean
    result.stable_n, result.canary_n = s.n, c.n
    need = policy.samples_needed(metric)
    allowed = margin(metric, pooled_stable_mean(estimates))
    insufficient = False
    if fast or not metric.has_margin:
        pass
    elif s.n < need or c.n < need or allowed is None:
        short, have = ("canary", c.n) if c.n < need else ("stable", s.n)
        unknown.insert(0, f"{short} has {have:.0f} of {need} samples")
        insufficient = True
    else:
        # A margin relative to the stable mean moves with the stable estimate: the test is then
        # on canary - (1 ± r) · stable, whose variance carries stable's share up to (1 + r)².
        weight = (1 + (metric.max_relative_regression or 0.0)) ** 2
        *prior, (s_now, c_now) = estimates
        cmp = compare(
            s_now, c_now, tau=metric.tau, alpha=alpha, stable_weight=weight, earlier=prior
        )
        effect = Effect(cmp.diff, cmp.low, cmp.high, 1 - alpha, METHOD, c.n)
        result.effect, result.threshold, result.margin = effect, math.log(1 / alpha), allowed
        null = worse_sign(metric.direction) * allowed
        result.statistic = difference_log_lr(
            s_now, c_now, tau=metric.tau, null=null, stable_weight=weight, earlier=prior
        )
        reading = effect.read(metric.direction, allowed=allowed)
        if reading == "fail":
            failures.append(f"worse than stable by more than {allowed:.4g}")
        elif reading == "inconclusive":
            unknown.append("difference not yet within the margin")
    if failures:
        result.verdict, result.reason = "fail", "; ".join(failures)
    elif unknown or fast:
        result.verdict = "insufficient" if insufficient else "inconclusive"
        result.reason = "; ".join(unknown) or "within the limit so far (fast check)"
    else:
        result.verdict, result.reason = "pass", "within the margin and the limit"
    return result


def sample_ratio(policy: Policy, stable: ArmData, canary: ArmData, weight: float) -> str | None:
    """Why the canary got far less than its share of this step's answers, if it did: the
    e-value against "its share is at least half its weight" reached its threshold."""
    name = policy.counted_by.name
    if name not in stable or name not in canary or not 0 < weight < 1:
        return None
    n_s, n_c = (estimate(arm[name]).n for arm in (stable, canary))
    threshold = math.log(policy.judged_steps * critical_tests(policy) / policy.alpha)
    evidence = log_evalue(
        [(1.0, n_s), (0.0, n_c)], null=1 - weight / 2, low=0.0, high=1.0, higher_is_worse=True
    )
    if evidence < threshold:
        return None
    return (
        f"sample ratio: the canary served {n_c:.0f} of {n_s + n_c:.0f} answers at this step, "
        f"far below its {weight:.0%} (crashing, refusing connections or misrouted)"
    )


def judge(
    policy: Policy,
    stable: ArmData,
    canary: ArmData,
    *,
    earlier: Sequence[Stratum] = (),
    weight: float | None = None,
    fast: bool = False,
) -> Judgement:
    """Compare the arms on every policy metric and decide promote, rollback or hold. `stable`
    and `canary` are the current step's data, `earlier` the steps before it; `weight` (the
    canary's share, when answers are assigned per request) adds the sample ratio check; `fast`
    runs only the exact tests."""
    alpha = policy.alpha / critical_tests(policy)
    verdicts = [
        judge_metric(
            policy,
            m,
            stable.get(m.name),
            canary.get(m.name),
            alpha=alpha,
            earlier=[(s.get(m.name), c.get(m.name)) for s, c in earlier],
            fast=fast,
        )
        for m in policy.metrics
    ]
    critical = [v for v in verdicts if v.critical]
    failed = [f"{v.name}: {v.reason}" for v in critical if v.verdict == "fail"]
    ratio = sample_ratio(policy, stable, canary, weight) if weight is not None else None
    if failed or ratio:
        return Judgement("rollback", [*failed, *([ratio] if ratio else [])], verdicts)
    if not fast and all(v.verdict == "pass" for v in critical):
        return Judgement("promote", ["every critical metric passed"], verdicts)
    waiting = [f"{v.name}: {v.reason}" for v in critical if v.verdict != "pass"]
    return Judgement("hold", waiting, verdicts)
