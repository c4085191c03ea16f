"""What an experiment reads: the compared metrics, their directions and taus, and the guardrails."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from scripts.toolkit.metrics import MetricQuery, Selector
from scripts.toolkit.policy import Policy

GUARDRAIL = "guardrail:"  # query-name prefix: a guardrail reads the policy's own selectors
DEFAULT_GUARDRAILS = ("error_rate", "slow_answers")
Direction = Literal["higher_is_better", "lower_is_better"]


@dataclass(frozen=True)
class MetricSpec:
    """A metric the experiment compares: what to read, which way is better, its tau."""

    name: str
    query: MetricQuery
    direction: Direction
    tau: float  # the effect the confidence sequence is tuned to, fixed before any data
    unit: str = ""


def _ratio(
    name: str, *, total: str, hits: str | None = None, good: str | None = None
) -> MetricQuery:
    return MetricQuery(
        name=name,
        kind="ratio",
        total=Selector.parse(total),
        hits=Selector.parse(hits) if hits else None,
        good=Selector.parse(good) if good else None,
    )


def _histogram(name: str, selector: str) -> MetricQuery:
    return MetricQuery(name=name, kind="mean", histogram=Selector.parse(selector))


# The comparisons the report makes; any of them may be the primary metric.
METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("quality", _histogram("quality", "app_quality_score"), "higher_is_better", 0.05),
        MetricSpec(
            "feedback",
            _ratio("feedback", total="app_feedback_total", hits='app_feedback_total{rating="up"}'),
            "higher_is_better",
            0.10,
        ),
        MetricSpec(
            "error_rate",
            _ratio(
                "error_rate", total="app_answers_total", hits='app_answers_total{outcome="error"}'
            ),
            "lower_is_better",
            0.02,
        ),
        MetricSpec(
            "latency",
            _histogram("latency", "app_answer_duration_seconds"),
            "lower_is_better",
            0.05,
            "s",
        ),
        MetricSpec(
            "cost", _histogram("cost", "app_answer_cost_usd"), "lower_is_better", 5e-5, "USD"
        ),
    )
}
USERS = _ratio("users", total="app_experiment_units_total", hits="app_experiment_units_total")


def queries(policy: Policy, guardrails: Sequence[str]) -> list[MetricQuery]:
    """Everything the report reads: users, the compared metrics, the guardrails."""
    by_name = {m.name: m for m in policy.metrics}
    guards = [
        dataclasses.replace(by_name[g].query(), name=GUARDRAIL + g)
        for g in guardrails
        if g in by_name
    ]
    return [USERS, *(s.query for s in METRICS.values()), *guards]
