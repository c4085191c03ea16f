"""Metric observations per arm (stable, canary), and the sources that read them.

An observation is cumulative: counts since the start of the analysis. Two kinds exist:
`Ratio` (hits out of total events, for error rate, slow requests, negative feedback) and
`Histogram` (a Prometheus histogram, for means such as the quality score or cost).

Sources:
- `ScrapeSource` reads each arm's `/metrics` directly (no Prometheus needed): counts since each
  process started; when a process restarts (its counters go down) what it counted before is kept;
- `PrometheusSource` asks a Prometheus server with PromQL `increase(...[window])`.

Metrics are named by a PromQL series selector, `name{label="value", other=~"regex"}`; the arm's
own labels (`track="canary"`, or `prompt_version="v2"`) are added to it.
"""

from __future__ import annotations

from scripts.toolkit.metrics.exposition import observe, parse_exposition
from scripts.toolkit.metrics.observations import (
    ArmData,
    Histogram,
    Observation,
    Ratio,
    observation_from,
    ratio,
)
from scripts.toolkit.metrics.promql import PrometheusSource
from scripts.toolkit.metrics.scrape import ScrapeSource
from scripts.toolkit.metrics.selectors import Selector
from scripts.toolkit.metrics.source import (
    Arm,
    MetricQuery,
    MetricSource,
    MetricsUnavailable,
    ResumableSource,
)

__all__ = [
    "Arm",
    "ArmData",
    "Histogram",
    "MetricQuery",
    "MetricSource",
    "MetricsUnavailable",
    "Observation",
    "PrometheusSource",
    "Ratio",
    "ResumableSource",
    "ScrapeSource",
    "Selector",
    "observation_from",
    "observe",
    "parse_exposition",
    "ratio",
]
