"""`PrometheusSource`: observations over the analysis window, by PromQL `increase(...)`."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import httpx

from scripts.toolkit.metrics.observations import ArmData, Histogram, Observation, ratio
from scripts.toolkit.metrics.selectors import Selector
from scripts.toolkit.metrics.source import Arm, MetricQuery, MetricsUnavailable, one_sentence


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
            what = "no JSON answer" if isinstance(exc, ValueError) else one_sentence(exc)
            raise MetricsUnavailable(
                f"cannot query Prometheus at {self.url} ({what}); is it a Prometheus server?",
                exit_code=3,
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
        queries = list(queries)
        with httpx.Client(timeout=self.timeout) as client:
            return {
                arm.name: {q.name: self._read_one(client, q, arm.labels) for q in queries}
                for arm in arms
            }

    def _read_one(
        self, client: httpx.Client, query: MetricQuery, labels: Mapping[str, str]
    ) -> Observation:
        def total(*selectors: Selector, suffix: str = "") -> float:
            rows = (self._increase(client, s.with_labels(labels), suffix) for s in selectors)
            return sum(v for row in rows for _, v in row)

        if query.kind == "ratio":
            events, part, is_good = query.ratio_parts()
            return ratio(total(*events), total(*part), is_good=is_good)
        selector = query.histogram_selector().with_labels(labels)
        rows = self._increase(client, selector, "_bucket", by="le")
        cumulative = sorted((float(m["le"]), v) for m, v in rows)
        # increase() extrapolates each bucket's series on its own, so a bucket can come out
        # below the one under it: its count is floored at zero rather than made negative.
        return Histogram.from_cumulative(
            cumulative, total(query.histogram_selector(), suffix="_sum"), clamp=True
        )
