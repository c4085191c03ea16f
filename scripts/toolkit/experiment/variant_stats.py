"""What each variant saw: users, answers, error rate, quality, latency, cost and feedback."""

from __future__ import annotations

import math
from dataclasses import dataclass

from scripts.toolkit.experiment.specs import METRICS
from scripts.toolkit.judge import estimate
from scripts.toolkit.metrics import ArmData, Histogram, Observation, Ratio
from scripts.toolkit.stats import Estimate, interval


@dataclass
class VariantStats:
    """What one variant saw."""

    version: str
    role: str  # production or canary
    users: float
    answers: float
    errors: float
    error_rate: float | None
    quality: float | None
    quality_ci: tuple[float, float] | None
    latency_mean: float | None
    latency_p95: float | None
    cost_per_answer: float | None
    feedback: float
    feedback_up_rate: float | None
    feedback_ci: tuple[float, float] | None


def histogram_quantile(q: float, histogram: Histogram) -> float:
    """The q-quantile from buckets, interpolated linearly as Prometheus' histogram_quantile."""
    total = histogram.count
    if total <= 0:
        return math.nan
    rank, seen, lower = q * total, 0.0, 0.0
    for upper, count in zip(histogram.bounds, histogram.counts, strict=True):
        if count > 0 and seen + count >= rank:
            if not math.isfinite(upper):
                return lower  # in the +Inf bucket: the highest finite bound
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
        lower = upper if math.isfinite(upper) else lower
    return lower


def mean_or_none(e: Estimate) -> float | None:
    """The estimate's mean, or None without data."""
    return e.mean if e.n > 0 and math.isfinite(e.mean) else None


def _ratio_of(observation: Observation) -> Ratio:
    if not isinstance(observation, Ratio):
        raise TypeError("expected a ratio observation")
    return observation


def variant_stats(version: str, role: str, data: ArmData, *, alpha: float) -> VariantStats:
    """One variant's figures from its totals, with always-valid intervals on the rates."""
    users, answers = _ratio_of(data["users"]), _ratio_of(data["error_rate"])
    feedback, latency = _ratio_of(data["feedback"]), data["latency"]
    if not isinstance(latency, Histogram):
        raise TypeError("latency is read from a histogram")
    quality = estimate(data["quality"])
    up = estimate(feedback)

    def ci(e: Estimate, tau: float) -> tuple[float, float] | None:
        return interval(e, tau=tau, alpha=alpha) if e.n > 0 else None

    return VariantStats(
        version=version,
        role=role,
        users=users.total,
        answers=answers.total,
        errors=answers.hits,
        error_rate=mean_or_none(estimate(answers)),
        quality=mean_or_none(quality),
        quality_ci=ci(quality, METRICS["quality"].tau),
        latency_mean=mean_or_none(estimate(latency)),
        latency_p95=histogram_quantile(0.95, latency) if latency.count else None,
        cost_per_answer=mean_or_none(estimate(data["cost"])),
        feedback=feedback.total,
        feedback_up_rate=mean_or_none(up),
        feedback_ci=ci(up, METRICS["feedback"].tau),
    )
