"""Synthetic metric observations with known truths, shaped like the service's metrics."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from contract.metrics import COST_BUCKETS, LATENCY_BUCKETS, SCORE_BUCKETS
from scripts.toolkit.judge import Judgement, MetricVerdict
from scripts.toolkit.metrics import Arm, ArmData, Histogram, MetricQuery, MetricsUnavailable, Ratio

INF = float("inf")


def histogram(bounds: tuple[float, ...], values: Mapping[float, float]) -> Histogram:
    """A histogram holding `count` observations of each `value` (value <= bound: its bucket)."""
    counts = [0.0] * len(bounds)
    for value, count in values.items():
        counts[next(i for i, bound in enumerate(bounds) if value <= bound)] += count
    return Histogram(bounds, tuple(counts), sum(v * c for v, c in values.items()))


def arm(
    n: float,
    *,
    error_rate: float = 0.01,
    quality: float = 0.63,
    refusals: float = 0.3,
    slow: float = 0.02,
    cost: float = 1e-4,
    down: float = 0.2,
) -> ArmData:
    """Cumulative observations of `n` answers: errors, slow answers, a bimodal quality score
    (refusals score 0, the others so that the mean is `quality`), cost and feedback."""
    answered = n * (1 - refusals)
    high = min(quality / (1 - refusals), 1.0)
    rated = n * 0.3
    return {
        "error_rate": Ratio(n * error_rate, n),
        "slow_answers": Ratio(n * slow, n),
        "quality_score": histogram((*SCORE_BUCKETS, INF), {0.0: n * refusals, high: answered}),
        "cost_per_answer": histogram((*COST_BUCKETS, INF), {cost: n}),
        "negative_feedback": Ratio(rated * down, rated),
    }


_ = LATENCY_BUCKETS  # the slow_answers metric reads the latency histogram's 0.5 s bucket


@dataclass
class ScriptedSource:
    """A metric source replaying prepared readings, one per call (then the last one again).

    A reading is a (stable, canary) pair, or an exception to raise (metrics unavailable)."""

    readings: list[tuple[ArmData, ArmData] | Exception]
    calls: int = 0
    seen_arms: list[tuple[Arm, ...]] = field(default_factory=list)

    def read(self, queries: Iterable[MetricQuery], arms: Iterable[Arm]) -> dict[str, ArmData]:
        """The next prepared reading."""
        arms = tuple(arms)
        self.seen_arms.append(arms)
        reading = self.readings[min(self.calls, len(self.readings) - 1)]
        self.calls += 1
        if isinstance(reading, Exception):
            raise reading
        return {arms[0].name: reading[0], arms[1].name: reading[1]}


def unavailable() -> MetricsUnavailable:
    """The error a source raises when it cannot read."""
    return MetricsUnavailable("connection refused", exit_code=3)


class FakeClock:
    """Time that moves only when slept through."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        """Advance the clock."""
        self.now += seconds


def exact_arm(
    n: float,
    *,
    errors: float = 0.01,
    slow: float = 0.08,
    refusals: float = 0.25,
    answer_scores: tuple[float, ...] = (0.8, 0.9, 1.0),
    cost: float = 1e-4,
    down: float = 0.2,
) -> ArmData:
    """One arm after `n` answers, with exactly the given rates: errors among answers; among the
    rest, slow ones, refusals (score 0) and scores spread over `answer_scores`, a cost per
    answer spread ±20% around `cost`, and 30% of answers rated, `down` of them down."""
    answered = n * (1 - errors)
    scores = {0.0: answered * refusals}
    for score in answer_scores:
        scores[score] = scores.get(score, 0.0) + answered * (1 - refusals) / len(answer_scores)
    rated = 0.3 * answered
    return {
        "error_rate": Ratio(errors * n, n),
        "slow_answers": Ratio(slow * answered, answered),
        "quality_score": histogram(SCORE_BUCKETS, scores),
        "cost_per_answer": histogram(
            COST_BUCKETS, {cost * 0.8: answered / 3, cost: answered / 3, cost * 1.2: answered / 3}
        ),
        "negative_feedback": Ratio(down * rated, rated),
    }


def by_name(verdict: Judgement) -> dict[str, MetricVerdict]:
    """The verdict's metrics by name."""
    return {m.name: m for m in verdict.metrics}
