"""What every metric source shares: the queries it answers, the arms it reads, its failure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.metrics.observations import ArmData
from scripts.toolkit.metrics.selectors import Selector


@dataclass(frozen=True)
class MetricQuery:
    """What to read for one policy metric: a ratio of two selectors, or a histogram."""

    name: str
    kind: str  # "ratio" or "mean"
    hits: Selector | None = None
    good: Selector | None = None  # alternatively: hits = total - good
    total: Selector | None = None
    histogram: Selector | None = None

    def ratio_parts(self) -> tuple[Selector, Selector, bool]:
        """(total, hits or good, whether it is `good`) of a ratio metric."""
        part = self.good or self.hits
        if self.kind != "ratio" or self.total is None or part is None:
            raise ValueError(f"metric {self.name} is not a ratio of two selectors")
        return self.total, part, self.good is not None

    def histogram_selector(self) -> Selector:
        """The histogram of a mean metric."""
        if self.kind != "mean" or self.histogram is None:
            raise ValueError(f"metric {self.name} is not a histogram mean")
        return self.histogram


@dataclass(frozen=True)
class Arm:
    """One side of the comparison: where its metrics are and which labels pick its series."""

    name: str
    labels: dict[str, str]
    urls: tuple[str, ...] = ()


class MetricSource(Protocol):
    """Reads cumulative observations per arm since the source's first reading."""

    def read(self, queries: Iterable[MetricQuery], arms: Iterable[Arm]) -> dict[str, ArmData]:
        """Observations per arm name and metric name; raises MetricsUnavailable."""


class MetricsUnavailable(ToolkitError):
    """The metric source could not be read this time (the analysis holds, then fails safe)."""
