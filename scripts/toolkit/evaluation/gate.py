"""The gate: each score's paired difference against the policy's margin and limit.

Per score with a rule in the policy's `evaluation.metrics` (`d` = candidate - baseline with its
two-sided 1 - alpha interval, the margin as `analysis.margin` defines it, of the baseline mean):

- the interval is read against the margin as everywhere (`Effect.read`): shown worse beyond it
  fails. So does *not shown within it*: this is a non-inferiority test on a fixed sample, where
  the candidate must be shown no worse than the margin (one-sided level alpha / 2), so a wide
  interval (too few cases, noisy score) fails too;
- the candidate's mean must not be worse than the `limit` (a floor when higher is better);
- a score whose interval is unbounded (fewer than two cases) is `inconclusive`.

The candidate passes only if every gated score passes: an intersection-union test, so the
overall chance of passing a candidate that is worse beyond a margin stays under alpha / 2 with
no multiplicity correction.

The intervals are Student-t, for each arm's mean and for the mean of the paired differences.
Why t and not a bootstrap: the scores are bounded and the set has ~100 cases, where the
t-interval's coverage is good (central limit theorem) while a percentile bootstrap under-covers
for small or lumpy samples (many differences are exactly 0); it is exact arithmetic with no
random seed, identical pairs give exactly [0, 0], and it can be checked against `scipy.stats.t`
(scipy is used when installed, else an exact closed form).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from scripts.toolkit.analysis import Direction, Effect, Verdict, json_ready, margin, worse_sign
from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.evaluation.scoring import SCORES, CaseResult
from scripts.toolkit.policy import EvalMetricPolicy, EvaluationPolicy

Status = Literal["pass", "fail", "inconclusive"]


def _t_cdf(t: float, df: int) -> float:
    """Student-t CDF for integer `df`, in closed form (Abramowitz and Stegun 26.7.3-4)."""
    theta = math.atan(t / math.sqrt(df))
    c2, sin = math.cos(theta) ** 2, math.sin(theta)
    if df % 2:
        term = total = math.cos(theta) if df > 1 else 0.0
        for k in range(1, (df - 1) // 2):
            term *= 2 * k / (2 * k + 1) * c2
            total += term
        a = 2 / math.pi * (theta + sin * total)
    else:
        term = total = 1.0
        for k in range(1, df // 2):
            term *= (2 * k - 1) / (2 * k) * c2
            total += term
        a = sin * total
    return 0.5 + a / 2


def t_quantile(p: float, df: int) -> float:
    """The `p` quantile (p >= 0.5) of Student's t: scipy when installed, else bisection on the
    exact CDF (agrees with scipy to 1e-9)."""
    try:
        from scipy.stats import t as student  # noqa: PLC0415  # optional: a dev dependency
    except ImportError:
        low, high = 0.0, 1.0
        while _t_cdf(high, df) < p:
            high *= 2
        for _ in range(200):
            mid = (low + high) / 2
            low, high = (mid, high) if _t_cdf(mid, df) < p else (low, mid)
            if high - low < 1e-12:
                break
        return (low + high) / 2
    return float(student.ppf(p, df))


def mean_interval(values: Sequence[float], *, alpha: float, method: str = "Student-t") -> Effect:
    """Mean with its Student-t interval; unbounded for fewer than two values."""
    n = len(values)
    if n == 0:
        return Effect(math.nan, math.nan, math.nan, 1 - alpha, method, 0)
    mean = math.fsum(values) / n
    half = math.inf
    if n > 1:
        spread = statistics.stdev(values)
        half = t_quantile(1 - alpha / 2, n - 1) * spread / math.sqrt(n) if spread else 0.0
    return Effect(mean, mean - half, mean + half, 1 - alpha, method, n)


def paired_interval(
    candidate: Sequence[float], baseline: Sequence[float], *, alpha: float
) -> Effect:
    """Interval of the mean paired difference, candidate - baseline."""
    differences = [c - b for c, b in zip(candidate, baseline, strict=True)]
    return mean_interval(differences, alpha=alpha, method="paired Student-t")


@dataclass(frozen=True)
class ScoreResult:
    """One score: both arms, the paired difference, the thresholds and the verdict."""

    name: str
    direction: Direction
    candidate: Effect
    baseline: Effect
    difference: Effect
    margin: float | None
    limit: float | None
    verdict: Verdict
    reason: str

    def comparison(self) -> dict[str, Any]:
        """JSON-ready: the difference, the thresholds it was held to, and the verdict."""
        keys = ("difference", "margin", "limit", "verdict", "reason")
        return json_ready({k: getattr(self, k) for k in keys})

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": SCORES[self.name],
            "direction": self.direction,
            "candidate": self.candidate.to_dict(),
            "baseline": self.baseline.to_dict(),
            **self.comparison(),
        }


def check_policy(policy: EvaluationPolicy) -> None:
    """Every rule must name a score this tool computes."""
    unknown = sorted(set(policy.metrics) - set(SCORES))
    if unknown:
        raise ToolkitError(
            f"the policy's evaluation.metrics has unknown score '{unknown[0]}' "
            f"(known: {', '.join(SCORES)})."
        )


def _verdict(
    rule: EvalMetricPolicy, candidate: Effect, difference: Effect, allowed: float | None
) -> tuple[Verdict, str]:
    failures: list[str] = []
    unknown = ""
    if allowed is not None:
        reading = difference.read(rule.direction, allowed=allowed)
        worst = difference.worse_by(rule.direction)[1]
        if not math.isfinite(worst):
            unknown = "too few cases for an interval"
        elif reading == "fail":
            failures.append(f"worse than the baseline by more than {allowed:.4g}")
        elif reading == "inconclusive":
            failures.append(
                f"not shown within the margin: may be {worst:.4g} worse (> {allowed:.4g})"
            )
    mean = candidate.estimate
    if rule.limit is not None and worse_sign(rule.direction) * (mean - rule.limit) > 0:
        word = "below" if rule.direction == "higher_is_better" else "above"
        failures.append(f"mean {mean:.4g} {word} the limit {rule.limit:.4g}")
    if failures or unknown:
        return ("fail", "; ".join(failures)) if failures else ("inconclusive", unknown)
    return "pass", "within the margin" + (" and the limit" if rule.limit is not None else "")


def judge_score(
    name: str,
    rule: EvalMetricPolicy | None,
    pairs: Sequence[tuple[float, float]],
    *,
    alpha: float,
) -> ScoreResult:
    """Compare the arms on one score (the pairs are the cases where it applies)."""
    cand = mean_interval([c for c, _ in pairs], alpha=alpha)
    base = mean_interval([b for _, b in pairs], alpha=alpha)
    diff = paired_interval([c for c, _ in pairs], [b for _, b in pairs], alpha=alpha)
    allowed = margin(rule, base.estimate) if rule else None
    verdict: Verdict
    if not pairs:
        verdict, reason = "missing", "no case of this run has this score"
    elif rule is None:
        verdict, reason = "report", "reported only (no rule in the policy)"
    else:
        verdict, reason = _verdict(rule, cand, diff, allowed)
    return ScoreResult(
        name=name,
        direction=rule.direction if rule else "higher_is_better",
        candidate=cand,
        baseline=base,
        difference=diff,
        margin=allowed,
        limit=rule.limit if rule else None,
        verdict=verdict,
        reason=reason,
    )


def compare_scores(
    results: Sequence[CaseResult], rules: Mapping[str, EvalMetricPolicy], alpha: float
) -> list[ScoreResult]:
    """Every score judged over the cases where both arms have it."""
    scores = []
    for name in SCORES:
        pairs = [
            (c, b)
            for r in results
            if (c := r.candidate[name]) is not None and (b := r.baseline[name]) is not None
        ]
        scores.append(judge_score(name, rules.get(name), pairs, alpha=alpha))
    return scores


def gate_status(scores: Sequence[ScoreResult]) -> tuple[Status, list[str]]:
    """The intersection-union rule: pass only when every gated score passes; with the reasons
    (the failures, else the inconclusive scores)."""
    failures = [f"{s.name}: {s.reason}" for s in scores if s.verdict == "fail"]
    unknown = [s for s in scores if s.verdict == "inconclusive"]
    status: Status = "fail" if failures else "inconclusive" if unknown else "pass"
    return status, failures or [f"{s.name}: {s.reason}" for s in unknown]
