"""The experiment report as a command: read the variants and their metrics, analyse, render.

The two versions under test and the canary's share come from the registry, the service's
`/version` or the options. The service assigns each user to the production or the canary
version of a prompt (sticky, by the bucket contract) and labels every metric with `prompt` and
`prompt_version`; the totals are read per variant from one or more `/metrics` pages (summed over
replicas, or saved copies of them), or from Prometheus as `increase()` over a window.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from scripts.toolkit.cli import EXIT_BY_VERDICT, Outcome, ToolkitError
from scripts.toolkit.evaluation.arms import service_info
from scripts.toolkit.experiment.render import next_command, render_markdown, render_text
from scripts.toolkit.experiment.winner import Variants, analyze, queries
from scripts.toolkit.metrics import (
    Arm,
    ArmData,
    MetricQuery,
    MetricsUnavailable,
    PrometheusSource,
    observe,
    parse_exposition,
)
from scripts.toolkit.metrics.database import DatabaseSource
from scripts.toolkit.policy import load_policy
from scripts.toolkit.registry_ops import rollout_state


def experiment_report(
    *,
    policy: Path,
    prompt: str,
    url: str | None,
    registry_dir: Path | None,
    production_version: str | None,
    canary_version: str | None,
    canary_percentage: float | None,
    metrics_url: Sequence[str],
    metrics_file: Sequence[Path],
    database_url: str | None,
    prometheus_url: str | None,
    window_seconds: float,
    primary: str | None,
    guardrail: Sequence[str],
    min_samples: int | None,
) -> Outcome:
    """Read the metrics, analyse, render; `primary` and `guardrail` (when given) replace the
    policy's."""
    rules = load_policy(policy)
    experiment = rules.experiment_with(primary=primary, guardrails=guardrail or None)
    variants = resolve_variants(
        prompt=prompt,
        registry_dir=registry_dir,
        url=url,
        production_version=production_version,
        canary_version=canary_version,
        canary_percentage=canary_percentage,
    )
    data, where = read_metrics(
        queries(rules, experiment),
        variants.arms(),
        url=url,
        metrics_urls=metrics_url,
        metrics_files=metrics_file,
        database_url=database_url,
        prometheus_url=prometheus_url,
        window_seconds=window_seconds,
    )
    report = analyze(data, variants, policy=rules, experiment=experiment, min_samples=min_samples)
    report.source = where
    report.next_command = next_command(report, registry_dir)
    return Outcome(
        status=report.status,
        exit_code=EXIT_BY_VERDICT[report.status],
        data=report.to_dict(),
        errors=report.reasons if report.status == "srm" else [],
        text=render_text(report),
        markdown=render_markdown(report),
    )


def variants_from_registry(registry_dir: Path, prompt: str) -> Variants:
    """Production and canary as the registry folder says."""
    state = rollout_state(registry_dir, prompt)
    if state.canary is None:
        raise ToolkitError(
            f"{prompt} has no canary version in {registry_dir}: there is no experiment to report."
        )
    return Variants(prompt, state.production, state.canary, state.canary_percentage, "registry")


def variants_from_service(url: str, prompt: str, *, timeout: float = 10.0) -> Variants:
    """Production and canary as the running service's `/version` says."""
    info = service_info(url, prompt, timeout=timeout)
    canary = next((v for v, status in info.versions.items() if status == "canary"), None)
    if canary is None or not info.production:
        raise ToolkitError(
            f"{prompt} has no canary version at {url}: there is no experiment to report."
        )
    return Variants(prompt, info.production, canary, info.traffic[canary], "service")


def resolve_variants(
    *,
    prompt: str,
    registry_dir: Path | None,
    url: str | None,
    production_version: str | None,
    canary_version: str | None,
    canary_percentage: float | None,
) -> Variants:
    """The registry's (else the service's) variants, each part overridden by the options."""
    found = None
    if registry_dir is not None:
        found = variants_from_registry(registry_dir, prompt)
    elif url:
        found = variants_from_service(url, prompt)
    production = production_version or (found.production if found else None)
    canary = canary_version or (found.canary if found else None)
    percentage = canary_percentage or (found.canary_percentage if found else None)
    if not (production and canary and percentage):
        raise ToolkitError(
            "name the experiment: --url or --registry-dir, or --production-version, "
            "--canary-version and --canary-percentage."
        )
    source = found.source if found else "options"
    return Variants(prompt, production, canary, percentage, source)


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
    database_url: str | None = None,
    prometheus_url: str | None,
    window_seconds: float,
) -> tuple[dict[str, ArmData], str]:
    """The totals from the first source named (pages, the service's database, Prometheus, then
    `<url>/metrics`), and where they came from."""
    if metrics_urls or metrics_files:
        where = ", ".join([*metrics_urls, *map(str, metrics_files)])
        return read_pages(queries, arms, metrics_urls, metrics_files), where
    if database_url:
        # The service's tables survive its restarts and deploys; its counters do not.
        database = DatabaseSource(database_url, since=time.time() - window_seconds)
        where = f"the service's database ({make_url(database_url).render_as_string()})"
        return database.read(queries, arms), f"{where} (last {window_seconds:g} s)"
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
