"""Metric observations per arm (stable, canary), and the sources that read them.

An observation is cumulative: counts since the start of the analysis. Two kinds exist:
`Ratio` (hits out of total events, for error rate, slow requests, negative feedback) and
`Histogram` (a Prometheus histogram, for means such as the quality score or cost).

Sources:
- `ScrapeSource` reads each arm's `/metrics` directly (no Prometheus needed) and subtracts the
  first reading; when a process restarts (its counters go down) what it counted before is kept;
- `PrometheusSource` asks a Prometheus server with PromQL `increase(...[window])`.

Metrics are named by a PromQL series selector, `name{label="value", other=~"regex"}`; the arm's
own labels (`track="canary"`, or `prompt_version="v2"`) are added to it.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import httpx
from prometheus_client.parser import text_string_to_metric_families

from scripts.toolkit.cli import ToolkitError


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

    def is_reset_from(self, other: Ratio) -> bool:
        """Whether a counter went down since `other` (the process restarted)."""
        return self.hits < other.hits or self.total < other.total


@dataclass(frozen=True)
class Histogram:
    """Per-bucket (not cumulative) counts under upper `bounds`, and the sum of observations."""

    bounds: tuple[float, ...]
    counts: tuple[float, ...]
    total: float

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

    def is_reset_from(self, other: Histogram) -> bool:
        """Whether a counter went down since `other` (the process restarted)."""
        return self.count < other.count


Observation = Ratio | Histogram
ArmData = dict[str, Observation]


_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*')
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


def _unescape(text: str) -> str:
    """A PromQL double-quoted string's value (`\\"` is `"`, `\\\\` is `\\`, `\\n` a newline)."""
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), text)


def _escape(value: str) -> str:
    """`value` as the inside of a PromQL double-quoted string."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@dataclass(frozen=True)
class Selector:
    """A PromQL series selector: a metric name and label matchers."""

    name: str
    matchers: tuple[tuple[str, str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Selector:
        """Parse `name{label="v", other=~"re.*"}`; raises ValueError with what is wrong."""
        match = re.fullmatch(r"\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*(?:\{(.*)\})?\s*", text, re.S)
        if not match:
            raise ValueError(f'not a series selector: {text!r} (expected name{{label="v"}})')
        name, body = match.group(1), match.group(2) or ""
        matchers, position = [], 0
        while body[position:].strip():
            found = _MATCHER.match(body, position)
            if not found:
                rest = body[position:].strip()
                raise ValueError(f"cannot read the label matchers of {text!r} at {rest!r}")
            label, op, value = found.group(1), found.group(2), _unescape(found.group(3))
            if op in ("=~", "!~"):
                try:
                    re.compile(value)
                except re.error as exc:
                    raise ValueError(
                        f"bad regular expression {value!r} for {label} in {text!r}: {exc}"
                    ) from exc
            matchers.append((label, op, value))
            position = found.end()
            if body.startswith(",", position):
                position += 1
            elif body[position:].strip():
                rest = body[position:].strip()
                raise ValueError(f"expected ',' between the label matchers of {text!r} at {rest!r}")
        return cls(name, tuple(matchers))

    def with_labels(self, labels: Mapping[str, str]) -> Selector:
        """This selector with equality matchers for `labels` added."""
        extra = tuple((k, "=", v) for k, v in sorted(labels.items()))
        return Selector(self.name, self.matchers + extra)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a series with `labels` is selected (labels absent count as empty)."""
        for label, op, value in self.matchers:
            actual = labels.get(label, "")
            if (op == "=" and actual != value) or (op == "!=" and actual == value):
                return False
            if op in ("=~", "!~") and (re.fullmatch(value, actual) is not None) != (op == "=~"):
                return False
        return True

    def promql(self, suffix: str = "") -> str:
        """The selector in PromQL, for `name + suffix` (e.g. `_bucket`)."""
        body = ",".join(f'{k}{op}"{_escape(v)}"' for k, op, v in self.matchers)
        return f"{self.name}{suffix}{{{body}}}"


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


def ratio(total: float, part: float, *, is_good: bool) -> Ratio:
    """A Ratio from a total and its hits (or its good events), kept within [0, total]: PromQL's
    increase() extrapolates each series on its own, so total - good can come out negative."""
    hits = total - part if is_good else part
    return Ratio(min(max(hits, 0.0), max(total, 0.0)), max(total, 0.0))


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


def _sample_sum(
    samples: list[tuple[str, dict[str, str], float]], selector: Selector, suffix: str = ""
) -> float:
    # prometheus_client's parser names counter samples `<name>_total` and histogram samples
    # `<name>_bucket/_sum/_count`; the selector names the metric as PromQL would.
    wanted = selector.name + suffix
    return sum(v for n, labels, v in samples if n == wanted and selector.matches(labels))


def _histogram(samples: list[tuple[str, dict[str, str], float]], selector: Selector) -> Histogram:
    cumulative: dict[float, float] = {}
    for name, labels, value in samples:
        if name == selector.name + "_bucket" and selector.matches(
            {k: v for k, v in labels.items() if k != "le"}
        ):
            bound = float(labels["le"])
            cumulative[bound] = cumulative.get(bound, 0.0) + value
    bounds = tuple(sorted(cumulative))
    counts, previous = [], 0.0
    for bound in bounds:
        counts.append(cumulative[bound] - previous)
        previous = cumulative[bound]
    return Histogram(bounds, tuple(counts), _sample_sum(samples, selector, "_sum"))


def observe(
    samples: list[tuple[str, dict[str, str], float]], query: MetricQuery, labels: Mapping[str, str]
) -> Observation:
    """One query's observation among parsed samples, restricted to an arm's labels."""
    if query.kind == "ratio":
        total, part, is_good = query.ratio_parts()
        return ratio(
            _sample_sum(samples, total.with_labels(labels)),
            _sample_sum(samples, part.with_labels(labels)),
            is_good=is_good,
        )
    return _histogram(samples, query.histogram_selector().with_labels(labels))


def parse_exposition(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Samples of a Prometheus text exposition as (name, labels, value)."""
    return [
        (s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if math.isfinite(s.value)
    ]


@dataclass
class _Counted:
    """What ScrapeSource remembers of one series group at one URL."""

    baseline: Observation  # the first reading of this process's lifetime (zero after a reset)
    last: Observation  # the latest reading
    carried: Observation  # counted in earlier lifetimes of the process (before resets)


@dataclass
class ScrapeSource:
    """Reads each arm's `/metrics` URLs directly, relative to the first successful reading.

    Each URL (one process) is followed on its own. When its counters go down since the last
    reading, the process restarted: what it had counted until then is kept, and its new counts
    are added from zero, so the observation stays cumulative over the whole analysis."""

    timeout: float = 5.0
    _counted: dict[tuple[str, str, str], _Counted] = field(default_factory=dict)
    resets: list[str] = field(default_factory=list)

    def read(self, queries: Iterable[MetricQuery], arms: Iterable[Arm]) -> dict[str, ArmData]:
        """Observations since the first reading, per arm; MetricsUnavailable if a URL fails
        (then nothing is remembered from this read)."""
        queries, arms = list(queries), list(arms)
        pages: dict[tuple[str, str], list[tuple[str, dict[str, str], float]]] = {}
        with httpx.Client(timeout=self.timeout) as client:
            for arm in arms:
                for url in arm.urls:
                    try:
                        response = client.get(url)
                        response.raise_for_status()
                        pages[arm.name, url] = parse_exposition(response.text)
                    except (httpx.HTTPError, ValueError) as exc:
                        raise MetricsUnavailable(
                            f"cannot read {arm.name} metrics at {url}: {exc}", exit_code=3
                        ) from exc
        result: dict[str, ArmData] = {}
        for arm in arms:
            data: ArmData = {}
            for query in queries:
                observation = observe([], query, arm.labels)  # nothing, if the arm has no URL
                for url in arm.urls:
                    current = observe(pages[arm.name, url], query, arm.labels)
                    since = self._since_start((arm.name, url, query.name), current)
                    observation = _plus(observation, since)
                data[query.name] = observation
            result[arm.name] = data
        return result

    def _since_start(self, key: tuple[str, str, str], current: Observation) -> Observation:
        counted = self._counted.get(key)
        if counted is None:
            zero = _minus(current, current)
            self._counted[key] = _Counted(baseline=current, last=current, carried=zero)
            return zero
        if _is_reset(current, counted.last):
            self.resets.append(f"{key[0]}/{key[2]}")
            counted.carried = _plus(counted.carried, _minus(counted.last, counted.baseline))
            counted.baseline = _minus(current, current)
        counted.last = current
        return _plus(counted.carried, _minus(current, counted.baseline))


def _minus(a: Observation, b: Observation) -> Observation:
    if isinstance(a, Ratio) and isinstance(b, Ratio):
        return a.minus(b)
    if isinstance(a, Histogram) and isinstance(b, Histogram):
        return a.minus(b)
    raise TypeError("observations of different kinds")


def _plus(a: Observation, b: Observation) -> Observation:
    if isinstance(a, Ratio) and isinstance(b, Ratio):
        return a.plus(b)
    if isinstance(a, Histogram) and isinstance(b, Histogram):
        return a.plus(b)
    raise TypeError("observations of different kinds")


def _is_reset(current: Observation, last: Observation) -> bool:
    if isinstance(current, Ratio) and isinstance(last, Ratio):
        return current.is_reset_from(last)
    if isinstance(current, Histogram) and isinstance(last, Histogram):
        return current.is_reset_from(last)
    raise TypeError("observations of different kinds")


@dataclass
class PrometheusSource:
    """Reads `increase()` over the analysis window from a Prometheus server's HTTP API."""

    url: str
    start: float
    timeout: float = 10.0
    now: float | None = None  # for tests: evaluate at this time instead of the server's now

    def _query(self, client: httpx.Client, promql: str) -> list[tuple[dict[str, str], float]]:
        params = {"query": promql}
        if self.now is not None:
            params["time"] = str(self.now)
        try:
            response = client.get(f"{self.url.rstrip('/')}/api/v1/query", params=params)
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise MetricsUnavailable(
                f"cannot query Prometheus at {self.url}: {exc}", exit_code=3
            ) from exc
        if body.get("status") != "success":
            raise MetricsUnavailable(
                f"Prometheus refused {promql!r}: {body.get('error')}", exit_code=3
            )
        return [(r["metric"], float(r["value"][1])) for r in body["data"]["result"]]

    def _window(self) -> str:
        end = self.now if self.now is not None else time.time()
        return f"{max(1, math.ceil(end - self.start))}s"

    def _increase(
        self, client: httpx.Client, selector: Selector, suffix: str = "", by: str = ""
    ) -> list[tuple[dict[str, str], float]]:
        grouping = f" by ({by})" if by else ""
        promql = f"sum{grouping}(increase({selector.promql(suffix)}[{self._window()}]))"
        return self._query(client, promql)

    def read(self, queries: Iterable[MetricQuery], arms: Iterable[Arm]) -> dict[str, ArmData]:
        """Observations over the window since `start`, per arm."""
        result: dict[str, ArmData] = {}
        with httpx.Client(timeout=self.timeout) as client:
            for arm in arms:
                data: ArmData = {}
                for q in queries:
                    data[q.name] = self._read_one(client, q, arm.labels)
                result[arm.name] = data
        return result

    def _read_one(
        self, client: httpx.Client, query: MetricQuery, labels: Mapping[str, str]
    ) -> Observation:
        def total(selector: Selector, suffix: str = "") -> float:
            return sum(v for _, v in self._increase(client, selector.with_labels(labels), suffix))

        if query.kind == "ratio":
            events, part, is_good = query.ratio_parts()
            return ratio(total(events), total(part), is_good=is_good)
        selector = query.histogram_selector().with_labels(labels)
        rows = self._increase(client, selector, "_bucket", by="le")
        cumulative = sorted((float(m["le"]), v) for m, v in rows)
        counts, previous = [], 0.0
        for _, value in cumulative:
            counts.append(max(0.0, value - previous))
            previous = value
        bounds = tuple(b for b, _ in cumulative)
        return Histogram(bounds, tuple(counts), total(query.histogram_selector(), "_sum"))
