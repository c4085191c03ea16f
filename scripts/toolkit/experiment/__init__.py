"""A/B experiments on prompt and model versions: per-variant metrics, sample ratio, a winner."""

from __future__ import annotations

from scripts.toolkit.experiment.analysis import ExperimentReport, analyze
from scripts.toolkit.experiment.command import experiment_report
from scripts.toolkit.experiment.comparisons import (
    Comparison,
    GuardrailCheck,
    check_guardrail,
    compare_metric,
)
from scripts.toolkit.experiment.render import next_command, render_markdown, render_text
from scripts.toolkit.experiment.sources import ExpositionSource, read_metrics, read_prometheus
from scripts.toolkit.experiment.specs import (
    DEFAULT_GUARDRAILS,
    GUARDRAIL,
    METRICS,
    USERS,
    Direction,
    MetricSpec,
    queries,
)
from scripts.toolkit.experiment.srm import (
    SRM_THRESHOLD,
    SampleRatio,
    chi_square_sf,
    sample_ratio_check,
)
from scripts.toolkit.experiment.variant_stats import (
    VariantStats,
    histogram_quantile,
    mean_or_none,
    variant_stats,
)
from scripts.toolkit.experiment.variants import (
    Variants,
    resolve_variants,
    variants_from_registry,
    variants_from_service,
)

__all__ = [
    "DEFAULT_GUARDRAILS",
    "GUARDRAIL",
    "METRICS",
    "SRM_THRESHOLD",
    "USERS",
    "Comparison",
    "Direction",
    "ExperimentReport",
    "ExpositionSource",
    "GuardrailCheck",
    "MetricSpec",
    "SampleRatio",
    "VariantStats",
    "Variants",
    "analyze",
    "check_guardrail",
    "chi_square_sf",
    "compare_metric",
    "experiment_report",
    "histogram_quantile",
    "mean_or_none",
    "next_command",
    "queries",
    "read_metrics",
    "read_prometheus",
    "render_markdown",
    "render_text",
    "resolve_variants",
    "sample_ratio_check",
    "variant_stats",
    "variants_from_registry",
    "variants_from_service",
]
