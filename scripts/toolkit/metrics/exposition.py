"""Observations from a Prometheus text exposition (a `/metrics` page), per arm's labels."""

from __future__ import annotations

import math
from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families

from scripts.toolkit.metrics.observations import Histogram, Observation, ratio
from scripts.toolkit.metrics.selectors import Selector
from scripts.toolkit.metrics.source import MetricQuery

Sample = tuple[str, dict[str, str], float]


def parse_exposition(text: str) -> list[Sample]:
    """Samples of a Prometheus text exposition as (name, labels, value)."""
    return [
        (s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if math.isfinite(s.value)
    ]


def observe(samples: list[Sample], query: MetricQuery, labels: Mapping[str, str]) -> Observation:
    """One query's observation among parsed samples, restricted to an arm's labels."""
    if query.kind == "ratio":
        total, part, is_good = query.ratio_parts()
        return ratio(
            sum(_sample_sum(samples, s.with_labels(labels)) for s in total),
            sum(_sample_sum(samples, s.with_labels(labels)) for s in part),
            is_good=is_good,
        )
    return _histogram(samples, query.histogram_selector().with_labels(labels))


def _sample_sum(samples: list[Sample], selector: Selector, suffix: str = "") -> float:
    # prometheus_client's parser names counter samples `<name>_total` and histogram samples
    # `<name>_bucket/_sum/_count`; the selector names the metric as PromQL would.
    wanted = selector.name + suffix
    return sum(v for n, labels, v in samples if n == wanted and selector.matches(labels))


def _histogram(samples: list[Sample], selector: Selector) -> Histogram:
    cumulative: dict[float, float] = {}
    for name, labels, value in samples:
        if name == selector.name + "_bucket" and selector.matches(
            {k: v for k, v in labels.items() if k != "le"}
        ):
            bound = float(labels["le"])
            cumulative[bound] = cumulative.get(bound, 0.0) + value
    return Histogram.from_cumulative(
        sorted(cumulative.items()), _sample_sum(samples, selector, "_sum")
    )
