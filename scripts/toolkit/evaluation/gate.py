"""The gate: each score's paired difference against the policy's margin, floor and ceiling.

Per score with a rule in the policy's `evaluation.metrics` (`d` = candidate - baseline,
`[lo, hi]` its two-sided 1 - alpha interval, `m` the margin = the larger of `max_regression`
and `max_relative_regression` x |baseline mean|):

- higher_is_better passes only when lo >= -m, lower_is_better only when hi <= +m: the standard
  non-inferiority reading, the candidate must be *shown* not to be worse by more than the margin
  (one-sided level alpha / 2). A wide interval (too few cases, noisy score) therefore fails;
- the candidate's mean must also reach the `floor` (and stay under the `ceiling`);
- a score whose interval is unbounded (fewer than two cases) is `inconclusive`.

The candidate passes only if every gated score passes: an intersection-union test, so the
overall chance of passing a candidate that is worse beyond a margin stays under alpha / 2 with
no multiplicity correction.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.evaluation.intervals import Interval, finite, mean_interval, paired_interval
from scripts.toolkit.evaluation.scoring import SCORES, CaseResult
from scripts.toolkit.policy import EvalMetricPolicy, EvaluationPolicy

Verdict = Literal["pass", "fail", "inconclusive", "report", "n/a"]
Status = Literal["pass", "fail", "inconclusive"]


@dataclass(frozen=True)
class ScoreResult:
    """One score: both arms, the paired difference, the thresholds and the verdict."""

    name: str
    direction: str
    candidate: Interval
    baseline: Interval
    difference: Interval
    margin: float | None
    floor: float | None
    ceiling: float | None
    verdict: Verdict
    reason: str

    def comparison(self) -> dict[str, Any]:
        """JSON-ready: the difference, the thresholds it was held to, and the verdict."""
        return {
            "difference": self.difference.to_dict(),
            "margin": finite(self.margin),
            "floor": self.floor,
            "ceiling": self.ceiling,
            "verdict": self.verdict,
            "reason": self.reason,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
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


def margin(rule: EvalMetricPolicy, baseline_mean: float) -> float | None:
    """The larger of the absolute and relative allowances (either alone when only one is set)."""
    allowances = [rule.max_regression] if rule.max_regression is not None else []
    if rule.max_relative_regression is not None and math.isfinite(baseline_mean):
        allowances.append(rule.max_relative_regression * abs(baseline_mean))
    return max(allowances) if allowances else None


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
    direction = rule.direction if rule else "higher_is_better"
    allowed = margin(rule, base.mean) if rule else None
    result = ScoreResult(
        name=name,
        direction=direction,
        candidate=cand,
        baseline=base,
        difference=diff,
        margin=allowed,
        floor=rule.floor if rule else None,
        ceiling=rule.ceiling if rule else None,
        verdict="pass",
        reason="",
    )
    if not pairs:
        return _with(result, "n/a", "no case of this run has this score")
    if rule is None:
        return _with(result, "report", "reported only (no rule in the policy)")
    failures: list[str] = []
    unknown = ""
    if allowed is not None:
        # How much worse the candidate is, at least (`best`) and at most (`worst`).
        higher = direction == "higher_is_better"
        best, worst = (-diff.high, -diff.low) if higher else (diff.low, diff.high)
        if not math.isfinite(worst):
            unknown = "too few cases for an interval"
        elif best > allowed:
            failures.append(f"worse than the baseline by more than {allowed:.4g}")
        elif worst > allowed:
            failures.append(
                f"not shown within the margin: may be {worst:.4g} worse (> {allowed:.4g})"
            )
    if rule.floor is not None and cand.mean < rule.floor:
        failures.append(f"mean {cand.mean:.4g} below the floor {rule.floor:.4g}")
    if rule.ceiling is not None and cand.mean > rule.ceiling:
        failures.append(f"mean {cand.mean:.4g} above the ceiling {rule.ceiling:.4g}")
    if failures:
        return _with(result, "fail", "; ".join(failures))
    if unknown:
        return _with(result, "inconclusive", unknown)
    return _with(result, "pass", "within the margin" + (" and the floor" if rule.floor else ""))


def _with(result: ScoreResult, verdict: Verdict, reason: str) -> ScoreResult:
    return dataclasses.replace(result, verdict=verdict, reason=reason)


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
