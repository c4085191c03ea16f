"""Per-variant totals: cumulative from `/metrics` pages (or saved copies), or from Prometheus.

The service assigns each user to the production or the canary version of a prompt (sticky, by
the bucket contract) and labels every metric with `prompt` and `prompt_version`; the totals are
read per variant from one or more `/metrics` pages (summed over replicas), or from Prometheus
as `increase()` over a window.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import httpx

from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.metrics import (
    Arm,
    ArmData,
    MetricQuery,
    MetricsUnavailable,
    PrometheusSource,
    observe,
    parse_exposition,
)


def read_pages(
    queries: Sequence[MetricQuery],
    arms: Iterable[Arm],
    urls: Sequence[str],
    files: Sequence[Path] = (),
) -> dict[str, ArmData]:
    """Cumulative totals per arm and query from `/metrics` pages (summed over replicas) or saved
    copies of them."""
    texts = []
    with httpx.Client(timeout=10.0) as client:
        for url in urls:
            try:
                response = client.get(url)
                response.raise_for_status()
            except httpx.HTTPError as exc:
                raise ToolkitError(
                    f"cannot read metrics at {url} ({exc.__class__.__name__}); check --metrics-url."
                ) from exc
            texts.append(response.text)
    for path in files:
        try:
            texts.append(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ToolkitError(f"cannot read {path}: {exc.strerror}.") from exc
    samples = []
    for text in texts:
        try:
            samples.extend(parse_exposition(text))
        except ValueError as exc:
            raise ToolkitError(f"not a Prometheus text exposition: {exc}.") from exc
    return {arm.name: {q.name: observe(samples, q, arm.labels) for q in queries} for arm in arms}


def read_metrics(
    queries: Sequence[MetricQuery],
    arms: Sequence[Arm],
    *,
    url: str | None,
    metrics_urls: Sequence[str],
    metrics_files: Sequence[Path],
    prometheus_url: str | None,
    window_seconds: float,
) -> tuple[dict[str, ArmData], str]:
    """The totals from the first source named (pages, then Prometheus, then `<url>/metrics`),
    and where they came from."""
    if metrics_urls or metrics_files:
        where = ", ".join([*metrics_urls, *map(str, metrics_files)])
        return read_pages(queries, arms, metrics_urls, metrics_files), where
    if prometheus_url:
        # `increase()` over the last `window_seconds`.
        prometheus = PrometheusSource(url=prometheus_url, start=time.time() - window_seconds)
        try:
            return prometheus.read(queries, arms), f"{prometheus_url} (last {window_seconds:g} s)"
        except MetricsUnavailable as exc:
            raise ToolkitError(exc.message) from exc
    if url:
        page = f"{url.rstrip('/')}/metrics"
        return read_pages(queries, arms, [page]), page
    raise ToolkitError("say where the metrics are: --url, --metrics-url or --prometheus-url.")
