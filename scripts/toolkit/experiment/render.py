"""The experiment as text for stderr, a Markdown decision record, and the command to act on it."""

from __future__ import annotations

import shlex
from pathlib import Path

from scripts.toolkit.experiment.analysis import ExperimentReport
from scripts.toolkit.experiment.comparisons import Comparison
from scripts.toolkit.report import number

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


def _interval(pair: tuple[float, float] | None) -> str:
    return f" [{number(pair[0])}, {number(pair[1])}]" if pair else ""


def _difference(c: Comparison) -> str:
    return f"{number(c.difference)} [{number(c.ci_low)}, {number(c.ci_high)}]"


def render_text(report: ExperimentReport) -> str:
    """Human summary for stderr."""
    lines = [f"experiment {_HEADLINE[report.status]}: {_title(report)}", f"  {report.srm.note}"]
    for c in report.comparisons:
        lines.append(
            f"  {c.name:<10} production {number(c.production):>9}  canary {number(c.canary):>9}"
            f"  diff {_difference(c)}  {c.reading}"
        )
    lines += [f"  - {r}" for r in report.reasons]
    if report.next_command:
        lines.append(f"next: {report.next_command}")
    return "\n".join(lines)


def render_markdown(report: ExperimentReport) -> str:
    """The decision record for $GITHUB_STEP_SUMMARY."""
    confidence = f"{100 * (1 - report.alpha):g}%"
    srm = report.srm
    chi = (
        f"χ² = {number(srm.statistic)}, p = {srm.p_value:.3g}"
        if srm.statistic is not None and srm.p_value is not None
        else "not tested"
    )
    lines = [
        f"### A/B experiment: **{_HEADLINE[report.status]}**, {_title(report)}",
        "",
        f"- metrics: {report.source}; variants from {report.variants.source}",
        f"- sample ratio: {chi}: {srm.note}",
        f"- primary metric: {report.primary}; intervals: always-valid {confidence} "
        "(may be re-read at any time)",
        "",
        "| variant | users | answers | error rate | quality | latency mean / p95 (s) "
        "| cost per answer (USD) | feedback up-rate (n) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in report.stats:
        lines.append(
            f"| {s.version} ({s.role}) | {s.users:.0f} | {s.answers:.0f} | {number(s.error_rate)} "
            f"| {number(s.quality)}{_interval(s.quality_ci)} "
            f"| {number(s.latency_mean)} / {number(s.latency_p95)} | {number(s.cost_per_answer)} "
            f"| {number(s.feedback_up_rate)}{_interval(s.feedback_ci)} ({s.feedback:.0f}) |"
        )
    lines += [
        "",
        f"| metric | production | canary | canary - production ({confidence} CI) | reading |",
        "|---|---|---|---|---|",
    ]
    for c in report.comparisons:
        mark = " (primary)" if c.name == report.primary else ""
        lines.append(
            f"| {c.name}{mark} | {number(c.production)} | {number(c.canary)} "
            f"| {_difference(c)} | {c.reading} |"
        )
    if report.guardrails:
        lines += ["", "| guardrail | margin | winner worse by | verdict |", "|---|---|---|---|"]
        lines += [
            f"| {g.name} | {number(g.margin)} | {number(g.winner_worse_by)} "
            f"| {'**blocks**' if g.blocks else 'ok'}: {g.reading} |"
            for g in report.guardrails
        ]
    lines += ["", *[f"- {r}" for r in report.reasons]]
    if report.next_command:
        lines += ["", "To act on it:", "", f"```\n{report.next_command}\n```"]
    return "\n".join(lines)
