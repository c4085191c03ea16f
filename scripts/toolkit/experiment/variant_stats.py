"""What each variant saw: users, answers, the latency p95, and each compared metric's value."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from contract.metrics import ANSWER_DURATION, ANSWERS, EXPERIMENT_UNITS
from scripts.toolkit.analysis import Effect, json_ready
from scripts.toolkit.judge import estimate
from scripts.toolkit.metrics import ArmData, Histogram, MetricQuery, Ratio, Selector
from scripts.toolkit.policy import MetricPolicy
from scripts.toolkit.stats import interval

# What every variant reports whatever the policy compares, read by the contract's family names
# (a query name no policy metric can take: those match ^[a-z][a-z0-9_]*$).
USERS = MetricQuery("variant:users", "ratio", hits=Selector.parse(EXPERIMENT_UNITS),
                    total=Selector.parse(EXPERIMENT_UNITS))  # fmt: skip
ANSWERED = MetricQuery("variant:answers", "ratio", hits=Selector.parse(ANSWERS),
                       total=Selector.parse(ANSWERS))  # fmt: skip
DURATION = MetricQuery("variant:duration", "mean", histogram=Selector.parse(ANSWER_DURATION))
VARIANT_QUERIES = (USERS, ANSWERED, DURATION)


@dataclass
class VariantStats:
    """What one variant saw; `metrics` holds each compared metric's mean with its interval."""

    version: str
    role: str  # production or canary
    users: float
    answers: float
    latency_p95: float | None
    metrics: dict[str, Effect]

    def to_dict(self) -> dict[str, Any]:
        return json_ready({**asdict(self), "metrics": dict(self.metrics)})


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


def variant_stats(
    version: str, role: str, data: ArmData, metrics: Sequence[MetricPolicy], *, alpha: float
) -> VariantStats:
    """One variant's figures from its totals, with always-valid intervals on each metric."""
    users, answers, duration = (data[q.name] for q in VARIANT_QUERIES)
    if not (isinstance(users, Ratio) and isinstance(answers, Ratio)):
        raise TypeError("users and answers are counted")
    if not isinstance(duration, Histogram):
        raise TypeError("the answer duration is read from a histogram")
    values = {}
    for metric in metrics:
        e = estimate(data[metric.name])
        low, high = interval(e, tau=metric.tau, alpha=alpha) if e.n > 0 else (math.nan,) * 2
        values[metric.name] = Effect(e.mean, low, high, 1 - alpha, "always-valid", e.n)
    p95 = histogram_quantile(0.95, duration) if duration.count else None
    return VariantStats(version, role, users.total, answers.total, p95, values)
