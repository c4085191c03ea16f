"""What every metric source shares: the queries it answers, the arms it reads, its failure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import httpx

from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.metrics.observations import ArmData
from scripts.toolkit.metrics.selectors import Selector

Selectors = tuple[Selector, ...]  # summed: one count from several families


@dataclass(frozen=True)
class MetricQuery:
    """What to read for one policy metric: a ratio of two selectors (or sums of selectors, as
    the service's errors plus the router's failures), or a histogram."""

    name: str
    kind: str  # "ratio" or "mean"
    hits: Selector | Selectors | None = None
    good: Selector | Selectors | None = None  # alternatively: hits = total - good
    total: Selector | Selectors | None = None
    histogram: Selector | None = None

    def ratio_parts(self) -> tuple[Selectors, Selectors, bool]:
        """(total, hits or good, whether it is `good`) of a ratio metric, each summed."""
        total, part = _summed(self.total), _summed(self.good or self.hits)
        if self.kind != "ratio" or not total or not part:
            raise ValueError(f"metric {self.name} is not a ratio of two selectors")
        return total, part, self.good is not None

    def histogram_selector(self) -> Selector:
        """The histogram of a mean metric."""
        if self.kind != "mean" or self.histogram is None:
            raise ValueError(f"metric {self.name} is not a histogram mean")
        return self.histogram


def _summed(selectors: Selector | Selectors | None) -> Selectors:
    return (selectors,) if isinstance(selectors, Selector) else selectors or ()


@dataclass(frozen=True)
class Arm:
    """One side of the comparison: where its metrics are and which labels pick its series."""

    name: str
    labels: dict[str, str]
    urls: tuple[str, ...] = ()


class MetricSource(Protocol):
    """Reads cumulative observations per arm."""

    def read(self, queries: Iterable[MetricQuery], arms: Iterable[Arm]) -> dict[str, ArmData]:
        """Observations per arm name and metric name; raises MetricsUnavailable."""


@runtime_checkable
class ResumableSource(MetricSource, Protocol):
    """A source that remembers what it has counted (a scrape source): the monitor saves that
    with its state and gives it back when an interrupted rollout resumes."""

    def export_state(self) -> dict[str, Any]:
        """What it remembers, JSON-ready."""

    def restore(self, state: dict[str, Any]) -> None:
        """Take back what `export_state` returned; ValueError when it cannot be read."""


def one_sentence(error: Exception) -> str:
    """An HTTP failure in a few words: httpx's messages add a second line with a web link."""
    if isinstance(error, httpx.HTTPStatusError):
        return f"HTTP {error.response.status_code}"
    return str(error).splitlines()[0] if str(error) else error.__class__.__name__


class MetricsUnavailable(ToolkitError):
    """The metric source could not be read this time (the analysis holds, then fails safe)."""
