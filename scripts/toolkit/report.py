"""Decision records: the judge's verdicts as a Markdown table and as one line of text."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from scripts.toolkit.judge import MetricVerdict, Verdict


def number(value: float | None) -> str:
    """A compact number for tables: 4 significant digits, `-` for nothing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.4g}"


def _row(m: MetricVerdict) -> str:
    interval = f"[{number(m.ci_low)}, {number(m.ci_high)}]" if m.ci_low is not None else "-"
    statistic = f"{number(m.statistic)} / {number(m.threshold)}" if m.statistic is not None else "-"
    critical = "" if m.critical else " (advisory)"
    return (
        f"| {m.name}{critical} | {number(m.stable_value)} (n={m.stable_n:.0f}) "
        f"| {number(m.canary_value)} (n={m.canary_n:.0f}) | {number(m.effect)} | {interval} "
        f"| {number(m.margin)} | {number(m.limit)} | {statistic} | **{m.verdict}**: {m.reason} |"
    )


def verdict_table(verdict: Verdict) -> str:
    """Per metric: both values, the effect with its always-valid interval, the thresholds, the
    test statistic against its threshold, and the verdict."""
    header = (
        "| metric | stable | canary | effect (canary - stable) | always-valid CI | margin "
        "| limit | ln Λ / threshold | verdict |\n|---|---|---|---|---|---|---|---|---|"
    )
    return "\n".join([header, *(_row(m) for m in verdict.metrics)])


def decision_record(
    title: str,
    decision: str,
    reasons: Sequence[str],
    *,
    verdict: Verdict | None,
    facts: dict[str, Any],
) -> str:
    """A Markdown decision record for `$GITHUB_STEP_SUMMARY` and the demo's report."""
    lines = [f"### {title}: **{decision}**", ""]
    lines += [f"- {k}: {v}" for k, v in facts.items()]
    lines += ["", "Reasons:", *[f"- {r}" for r in reasons], ""]
    if verdict is not None:
        lines.append(verdict_table(verdict))
    return "\n".join(lines)


def one_line(verdict: Verdict | None, reasons: Sequence[str]) -> str:
    """The reasons, or the first metrics that are not passing, on one line."""
    if reasons:
        return "; ".join(reasons[:3])
    if verdict is None:
        return ""
    return "; ".join(f"{m.name} {m.verdict}" for m in verdict.metrics[:3])
