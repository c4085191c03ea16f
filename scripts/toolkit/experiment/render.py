"""The experiment as lines for stderr, a Markdown decision record, and the command to act on it."""

from __future__ import annotations

import shlex
from pathlib import Path

from scripts.toolkit.analysis import Effect
from scripts.toolkit.experiment.winner import ExperimentReport
from scripts.toolkit.report import comparison_line, effect_text, markdown, number, table

_HEADLINE = {"winner": "WINNER", "inconclusive": "NO WINNER YET", "srm": "SAMPLE RATIO MISMATCH"}


def next_command(report: ExperimentReport, registry_dir: Path | None) -> str | None:
    """What to run to act on the winner (the promote and rollback CLIs)."""
    if report.winner_role is None:
        return None
    where = ["--registry-dir", str(registry_dir)] if registry_dir else []
    prompt = report.variants.prompt
    if report.winner_role == "canary":
        argv = ["python", "-m", "scripts.promote", "--target", "prompt", "--prompt", prompt]
        return shlex.join([*argv, *where, "--to", "full"])
    reason = f"A/B: {report.winner} beat {report.variants.canary} on {report.primary}"
    argv = ["python", "-m", "scripts.rollback", "--target", "prompt", "--prompt", prompt]
    return shlex.join([*argv, *where, "--reason", reason])


def _title(report: ExperimentReport) -> str:
    v = report.variants
    return f"{v.prompt} {v.production} (production) vs {v.canary} (canary {v.canary_percentage:g}%)"


def _value(e: Effect) -> str:
    return f"{number(e.estimate)} [{number(e.low)}, {number(e.high)}] (n={e.n:.0f})"


def render_text(report: ExperimentReport) -> str:
    lines = [f"experiment {_HEADLINE[report.status]}: {_title(report)}", f"  {report.srm.note}"]
    for c in report.comparisons:
        arms = [("production", c.production), ("canary", c.canary)]
        lines.append(comparison_line(c.name, arms, effect_text(c.effect), c.reading))
    lines += [f"  - {r}" for r in report.reasons]
    return "\n".join(lines + ([f"next: {report.next_command}"] if report.next_command else []))


def render_markdown(report: ExperimentReport) -> str:
    """The decision record for $GITHUB_STEP_SUMMARY."""
    confidence = f"{100 * (1 - report.alpha):g}%"
    srm = report.srm
    chi = (
        f"χ² = {number(srm.statistic)}, p = {srm.p_value:.3g}"
        if srm.statistic is not None and srm.p_value is not None
        else "not tested"
    )
    names = [c.name for c in report.comparisons]
    variants = table(
        ["variant", "users", "answers", "latency p95 (s)", *names],
        (
            [
                f"{s.version} ({s.role})",
                f"{s.users:.0f}",
                f"{s.answers:.0f}",
                number(s.latency_p95),
                *(_value(s.metrics[n]) for n in names),
            ]
            for s in report.stats
        ),
    )
    comparisons = table(
        ["metric", "production", "canary", f"canary - production ({confidence} CI)", "reading"],
        (
            [
                c.name + (" (primary)" if c.name == report.primary else ""),
                number(c.production),
                number(c.canary),
                effect_text(c.effect),
                c.reading,
            ]
            for c in report.comparisons
        ),
    )
    guardrails = table(
        ["guardrail", "margin", "winner - other (CI)", "verdict"],
        (
            [g.name, number(g.margin), effect_text(g.effect), f"**{g.verdict}**: {g.reading}"]
            for g in report.guardrails
        ),
    )
    act = ["To act on it:", "", f"```\n{report.next_command}\n```"] if report.next_command else []
    return markdown(
        f"A/B experiment: **{_HEADLINE[report.status]}**, {_title(report)}",
        [
            f"metrics: {report.source}; variants from {report.variants.source}",
            f"sample ratio: {chi}: {srm.note}",
            f"primary metric: {report.primary}; intervals: always-valid {confidence} "
            "(may be re-read at any time)",
        ],
        variants,
        comparisons,
        guardrails if report.guardrails else [],
        [f"- {r}" for r in report.reasons],
        act,
    )
