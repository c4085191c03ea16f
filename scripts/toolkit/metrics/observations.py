"""Cumulative metric observations: `Ratio` (hits out of events) and `Histogram` (for means)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Ratio:
    """`hits` events out of `total`."""

    hits: float
    total: float

    def minus(self, other: Ratio) -> Ratio:
        """The events since `other` was read."""
        return Ratio(self.hits - other.hits, self.total - other.total)

    def plus(self, other: Ratio) -> Ratio:
        """Both sets of events together (two replicas, or two lifetimes of one process)."""
        return Ratio(self.hits + other.hits, self.total + other.total)


@dataclass(frozen=True)
class Histogram:
    """Per-bucket (not cumulative) counts under upper `bounds`, and the sum of observations."""

    bounds: tuple[float, ...]
    counts: tuple[float, ...]
    total: float

    @classmethod
    def from_cumulative(
        cls, buckets: Sequence[tuple[float, float]], total: float, *, clamp: bool = False
    ) -> Histogram:
        """From (upper bound, cumulative count) pairs sorted by bound, as Prometheus exposes
        them; `clamp` floors each bucket's count at zero."""
        counts, previous = [], 0.0
        for _, cumulative in buckets:
            count = cumulative - previous
            counts.append(max(0.0, count) if clamp else count)
            previous = cumulative
        return cls(tuple(bound for bound, _ in buckets), tuple(counts), total)

    @property
    def count(self) -> float:
        """Number of observations."""
        return sum(self.counts)

    def minus(self, other: Histogram) -> Histogram:
        """The observations since `other` was read."""
        if other.bounds != self.bounds:
            return self
        counts = tuple(a - b for a, b in zip(self.counts, other.counts, strict=True))
        return Histogram(self.bounds, counts, self.total - other.total)

    def plus(self, other: Histogram) -> Histogram:
        """Both sets of observations together (two replicas, or two lifetimes of one process).
        Different bucket layouts are merged on the union of the bounds, each bucket's count
        going to the merged bucket that ends where it ends."""
        total = self.total + other.total
        if not other.bounds:  # no series read (nothing observed yet)
            return Histogram(self.bounds, self.counts, total)
        if not self.bounds:
            return Histogram(other.bounds, other.counts, total)
        if self.bounds == other.bounds:
            counts = tuple(a + b for a, b in zip(self.counts, other.counts, strict=True))
            return Histogram(self.bounds, counts, total)
        bounds = tuple(sorted(set(self.bounds) | set(other.bounds)))
        merged = dict.fromkeys(bounds, 0.0)
        for histogram in (self, other):
            for bound, count in zip(histogram.bounds, histogram.counts, strict=True):
                merged[bound] += count
        return Histogram(bounds, tuple(merged.values()), total)


Observation = Ratio | Histogram
ArmData = dict[str, Observation]


def ratio(total: float, part: float, *, is_good: bool) -> Ratio:
    """A Ratio from a total and its hits (or its good events), kept within [0, total]: PromQL's
    increase() extrapolates each series on its own, so total - good can come out negative."""
    hits = total - part if is_good else part
    return Ratio(min(max(hits, 0.0), max(total, 0.0)), max(total, 0.0))


def observation_from(data: dict[str, Any]) -> Observation:
    """An observation from its `dataclasses.asdict` form (as a monitor's state file keeps it)."""
    if "bounds" in data:
        return Histogram(tuple(data["bounds"]), tuple(data["counts"]), data["total"])
    return Ratio(data["hits"], data["total"])
