"""The experiment report as a command: read the variants and their metrics, analyse, render."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from scripts.toolkit.cli import Outcome
from scripts.toolkit.experiment.render import next_command, render_markdown, render_text
from scripts.toolkit.experiment.sources import read_metrics
from scripts.toolkit.experiment.variants import resolve_variants
from scripts.toolkit.experiment.winner import analyze, queries
from scripts.toolkit.policy import load_policy


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
        prometheus_url=prometheus_url,
        window_seconds=window_seconds,
    )
    report = analyze(data, variants, policy=rules, experiment=experiment, min_samples=min_samples)
    report.source = where
    report.next_command = next_command(report, registry_dir)
    return Outcome(
        status=report.status,
        exit_code=report.exit_code,
        data=report.to_dict(),
        errors=report.reasons if report.status == "srm" else [],
        text=render_text(report),
        markdown=render_markdown(report),
    )
