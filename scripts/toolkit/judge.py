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
  runs its own test at alpha / k / (steps below 100). A breach rolls back only when it is the
  canary's own: with per-request assignment, the canary must also fail more often than stable
  over the same time (the share test below); otherwise, when stable breaches the limit too over
  the same step. Else the platform is degraded and rolling back would help nobody: the judge
  holds;
- share (ratio metrics, per-request assignment): does the canary fail more often than stable at
  the same moments? Each answer goes to the canary with probability w (its weight), whatever
  happens to both arms, so when the canary fails no more often, a failure is the canary's with
  probability at most w, through any outage or time-of-day swing: a betting e-process on the
  step's failures against w is valid under any non-stationarity shared by the arms. It gates the
  limit test's rollback (both must reach the threshold), so it spends no alpha of its own.

Units (sticky assignment by user): a user's answers are alike, so they are not independent
observations. When the data carries `UNITS` (the service's users first seen per answer, read by
the monitor for sticky code canaries), every test treats each arm as D times fewer observations,
D = the canary's answers per user over the rollout (at worst all of a user's answers are the
same, and the variance of a mean over users is D times the per-answer one). The canary's
instances start with the rollout, so its count is every user it served; stable's split of the
same users is random, so D holds for it too. With few users the tests then wait, and the policy's
`on_insufficient_data` decides (per-request assignment, the default, is the way to judge them).

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
UNITS = "units"  # Ratio(users first seen, answers): the unit count of sticky assignment
METHOD = "always-valid (mixture SPRT confidence sequence, stratified by step)"
Stratum = tuple[ArmData, ArmData]  # (stable, canary) over one step


def estimate(observation: Observation) -> Estimate:
    """Mean and variance of the mean of one arm's observation."""
    if isinstance(observation, Ratio):
        return proportion(observation.hits, observation.total)
    if not isinstance(observation, Histogram):
        raise TypeError(f"cannot estimate a {type(observation).__name__}")
    return histogram_mean(observation.bounds, observation.counts, observation.total)


def thinned(observation: Observation, design: float) -> Observation:
    """The observation with `design` times fewer observations, the same mean."""
    if design <= 1:
        return observation
    if isinstance(observation, Ratio):
        return Ratio(observation.hits / design, observation.total / design)
    counts = tuple(c / design for c in observation.counts)
    return Histogram(observation.bounds, counts, observation.total / design)


def design_effect(units: Sequence[Observation | None]) -> float:
    """Answers per unit (at least 1) from the canary's unit counts, one per stratum; 1 when no
    unit was counted (a service without the count reads as zeros: judged per answer)."""
    seen = [u for u in units if isinstance(u, Ratio)]
    both = _total(seen) if seen else None
    if not isinstance(both, Ratio) or both.hits <= 0:
        return 1.0
    return max(1.0, both.total / both.hits)


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
    share_evidence: float | None = None  # ln e-value: the canary fails more often (this step)
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


def share_evidence(
    metric: MetricPolicy, stable: Observation, canary: Observation, weight: float
) -> float | None:
    """ln e-value that the canary fails more often than stable at the same moments, from the
    arms' failures while the canary had `weight` of the answers by chance (None: not a ratio)."""
    if not isinstance(stable, Ratio) or not isinstance(canary, Ratio) or not 0 < weight < 1:
        return None

    def failures(arm: Ratio) -> float:
        return arm.hits if metric.direction == "lower_is_better" else arm.total - arm.hits

    points = [(1.0, failures(canary)), (0.0, failures(stable))]
    return log_evalue(points, null=weight, low=0.0, high=1.0, higher_is_worse=True)


def _limit_test(
    policy: Policy,
    metric: MetricPolicy,
    now: tuple[Observation, Observation],
    result: MetricVerdict,
    alpha: float,
    share: tuple[Observation, Observation, float] | None,
) -> tuple[list[str], list[str]]:
    """(failures, unknowns) of the exact limit test on this stratum (`now`: stable, canary),
    gated by the share test on the whole step (`share`: stable, canary, weight) where it
    applies; the figures go in `result`."""
    if metric.limit is None:
        return [], []
    stable, canary = now
    threshold = math.log(policy.judged_steps / alpha)
    evidence = limit_evidence(metric, canary)
    result.limit_evidence, result.limit_threshold = evidence, threshold
    limit = f"{'above' if metric.direction == 'lower_is_better' else 'below'} the limit "
    limit += f"{metric.limit:.4g}"
    if evidence < threshold:
        if limit_evidence(metric, canary, breach=False) < threshold:
            return [], [f"not yet clear of the limit {metric.limit:.4g}"]
        return [], []
    in_time = share_evidence(metric, *share) if share else None
    result.share_evidence = in_time
    if in_time is not None:  # the canary's own breach: it fails more often at the same time
        own, why = in_time >= threshold, "failing no more often than stable at the same time"
    else:
        # Stable breaches too: shown, or at least its mean over the same time is beyond the
        # limit (equal arms race to the threshold; the canary must not lose that race).
        beyond = worse_sign(metric.direction) * (estimate(stable).mean - metric.limit) > 0
        own = not (beyond or limit_evidence(metric, stable) >= threshold)
        why = f"stable breaches {metric.name} too"
    if own:
        more = ", failing more often than stable" if in_time is not None else ""
        return [f"{limit}{more}"], []
    result.degraded = True
    return [], [f"the platform is degraded: {limit}, {why}"]


def judge_metric(
    policy: Policy,
    metric: MetricPolicy,
    stable_now: Observation | None,
    canary_now: Observation | None,
    *,
    alpha: float,
    earlier: Sequence[tuple[Observation | None, Observation | None]] = (),
    fast: bool = False,
    share: tuple[Observation, Observation, float] | None = None,
) -> MetricVerdict:
    """One metric's verdict on this stratum's data and the strata `earlier`. `fast`: only the
    exact limit test (the checks between full judgements); `share`: the whole step's stable and
    canary data and the canary's weight, for the share test."""
    result = MetricVerdict(
        metric.name, metric.critical, metric.direction, "missing", "no data for one of the arms",
        limit=metric.limit, alpha=alpha,
    )  # fmt: skip
    if stable_now is None or canary_now is None:
        return result
    now = (stable_now, canary_now)
    failures, unknown = _limit_test(policy, metric, now, result, alpha, share)
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
    step: Stratum | None = None,
) -> Judgement:
    """Compare the arms on every policy metric and decide promote, rollback or hold. `stable`
    and `canary` are the current stratum's data (this step's, or since the platform was last
    degraded), `earlier` the strata before it, `step` the whole current step's (default: the
    stratum's); `weight` (the canary's share, when answers are assigned per request) adds the
    sample ratio check and the share test; `fast` runs only the exact tests."""
    alpha = policy.alpha / critical_tests(policy)
    strata = [*earlier, (stable, canary)]
    design = design_effect([c.get(UNITS) for _, c in strata])
    if design > 1:

        def thin(arm: ArmData) -> ArmData:
            return {m: thinned(o, design) for m, o in arm.items()}

        stable, canary = thin(stable), thin(canary)
        earlier = [(thin(s), thin(c)) for s, c in earlier]
        step = (thin(step[0]), thin(step[1])) if step else None
    whole = step or (stable, canary)

    def share(name: str) -> tuple[Observation, Observation, float] | None:
        s, c = whole[0].get(name), whole[1].get(name)
        return (s, c, weight) if s is not None and c is not None and weight else None

    verdicts = [
        judge_metric(
            policy,
            m,
            stable.get(m.name),
            canary.get(m.name),
            alpha=alpha,
            earlier=[(s.get(m.name), c.get(m.name)) for s, c in earlier],
            fast=fast,
            share=share(m.name),
        )
        for m in policy.metrics
    ]
    critical = [v for v in verdicts if v.critical]
    failed = [f"{v.name}: {v.reason}" for v in critical if v.verdict == "fail"]
    ratio = sample_ratio(policy, *whole, weight) if weight is not None else None
    if failed or ratio:
        return Judgement("rollback", [*failed, *([ratio] if ratio else [])], verdicts)
    if not fast and all(v.verdict == "pass" for v in critical):
        return Judgement("promote", ["every critical metric passed"], verdicts)
    waiting = [f"{v.name}: {v.reason}" for v in critical if v.verdict != "pass"]
    return Judgement("hold", waiting, verdicts)
