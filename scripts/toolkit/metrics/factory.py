"""Pick the metric source by name: `scrape` (each instance's /metrics) or `prometheus`."""

from __future__ import annotations

from collections.abc import Callable

from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.metrics.promql import PrometheusSource
from scripts.toolkit.metrics.scrape import ScrapeSource
from scripts.toolkit.metrics.source import MetricSource

SOURCES = ("scrape", "prometheus")
# A source for a rollout that started at the given time (Prometheus reads from then on).
SourceFactory = Callable[[float], MetricSource]


def source_factory(kind: str | None, *, prometheus_url: str | None) -> SourceFactory:
    """The source `kind` (default: prometheus when a URL is given, else scrape)."""
    kind = kind or ("prometheus" if prometheus_url else "scrape")
    if kind == "scrape":
        return lambda _start: ScrapeSource()
    if not prometheus_url:
        raise ToolkitError(
            "--source prometheus needs --prometheus-url (or ROLLOUT_PROMETHEUS_URL)."
        )
    url = prometheus_url
    return lambda start: PrometheusSource(url=url, start=start)


def fixed_source(source: MetricSource) -> SourceFactory:
    """A factory that hands out `source` whatever the rollout's start (tests, simulations)."""
    return lambda _start: source
