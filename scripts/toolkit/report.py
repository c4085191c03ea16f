"""Decision records: how the judge, the quality gate and the A/B report print what they decided.

Each builds its record from the same parts: a heading with the decision, facts, tables (one row
per metric: both arms, the effect with its interval, the threshold, the verdict) and reasons,
in Markdown for `$GITHUB_STEP_SUMMARY`, in lines for stderr. The JSON forms come from each
result's `to_dict` through `analysis.clean`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from scripts.toolkit.analysis import Effect
from scripts.toolkit.judge import Judgement, MetricVerdict


def number(value: float | None) -> str:
    """A compact number for tables: 4 significant digits, `-` for nothing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.4g}"


def signed(value: float | None) -> str:
    """`number` with a `+` on positive values (for differences)."""
    text = number(value)
    return f"+{text}" if value is not None and text != "-" and value > 0 else text


def effect_text(effect: Effect | None) -> str:
    """`+0.02 [-0.01, +0.05]`, or `-` without an effect."""
    if effect is None:
        return "-"
    return f"{signed(effect.estimate)} [{number(effect.low)}, {number(effect.high)}]"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def markdown(heading: str, facts: Sequence[str], *sections: Sequence[str]) -> str:
    """`### heading`, the facts as a list, then each non-empty section after a blank line."""
    lines = [f"### {heading}", "", *(f"- {fact}" for fact in facts)]
    for section in sections:
        if section:
            lines += ["", *section]
    return "\n".join(lines)


def comparison_line(
    name: str, arms: Sequence[tuple[str, float | None]], effect: str, end: str
) -> str:
    """One metric on one line for stderr: both arms' values, the effect, the verdict."""
    values = "  ".join(f"{label} {number(value):>9}" for label, value in arms)
    return f"  {name:<20} {values}  diff {effect}  {end}"


def _row(m: MetricVerdict) -> list[str]:
    e = m.effect
    statistic = f"{number(m.statistic)} / {number(m.threshold)}" if m.statistic is not None else "-"
    return [
        m.name + ("" if m.critical else " (advisory)"),
        f"{number(m.stable_value)} (n={m.stable_n:.0f})",
        f"{number(m.canary_value)} (n={m.canary_n:.0f})",
        number(e.estimate) if e else "-",
        f"[{number(e.low)}, {number(e.high)}]" if e else "-",
        number(m.margin),
        number(m.limit),
        statistic,
        f"**{m.verdict}**: {m.reason}",
    ]


def decision_record(
    title: str,
    decision: str,
    reasons: Sequence[str],
    *,
    verdict: Judgement | None,
    facts: Mapping[str, object],
    chart: Sequence[str] = (),
) -> str:
    """The canary analysis as a Markdown decision record: per metric both values, the effect
    with its always-valid interval, the thresholds, the test statistic and the verdict; then
    the rollout's `chart` (`chart.mermaid`)."""
    header = (
        "metric", "stable", "canary", "effect (canary - stable)", "always-valid CI", "margin",
        "limit", "ln Λ / threshold", "verdict",
    )  # fmt: skip
    rows = table(header, (_row(m) for m in verdict.metrics)) if verdict else []
    return markdown(
        f"{title}: **{decision}**",
        [f"{k}: {v}" for k, v in facts.items()],
        ["Reasons:", *(f"- {r}" for r in reasons)],
        rows,
        chart,
    )


def one_line(verdict: Judgement | None, reasons: Sequence[str]) -> str:
    """The reasons, or the first metrics that are not passing, on one line."""
    if reasons:
        return "; ".join(reasons[:3])
    if verdict is None:
        return ""
    return "; ".join(f"{m.name} {m.verdict}" for m in verdict.metrics[:3])
