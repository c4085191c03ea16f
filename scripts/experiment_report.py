"""A/B experiment report: production vs canary version of a prompt, from the service's metrics.

Examples:
  python -m scripts.experiment_report --url http://127.0.0.1:8000          # /version + /metrics
  python -m scripts.experiment_report --registry-dir registry \\
      --metrics-url http://10.0.0.1:8000/metrics --metrics-url http://10.0.0.2:8000/metrics
  python -m scripts.experiment_report --url http://svc:8000 \\
      --prometheus-url http://prometheus:9090 --window-seconds 604800
  python -m scripts.experiment_report --production-version v1 --canary-version v2 \\
      --canary-percentage 50 --metrics-file saved-metrics.txt

Exit codes: 0 a winner, 1 sample ratio mismatch (fix the experiment first), 2 usage or
configuration error, 3 no winner yet. How it decides: scripts/toolkit/experiment.py.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from scripts.toolkit import cli
from scripts.toolkit.experiment import (
    METRICS,
    ExperimentReport,
    ExpositionSource,
    Variants,
    analyze,
    queries,
    read_prometheus,
    variants_from_registry,
    variants_from_service,
)
from scripts.toolkit.metrics import ArmData
from scripts.toolkit.policy import DEFAULT_POLICY, Policy, load_policy
from scripts.toolkit.report import number


def _list(name: str) -> list[str]:
    value = cli.env(name)
    return [v for v in value.split(",") if v] if value else []


def _percentage(text: str) -> float:
    value = float(text.rstrip("%"))
    if not 0 < value < 100:
        raise argparse.ArgumentTypeError(f"must be above 0 and below 100, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Options of experiment_report (each falls back to ROLLOUT_<OPTION>)."""
    parser = cli.base_parser("python -m scripts.experiment_report", __doc__.split("\n\n")[0])
    env = cli.env
    which = parser.add_argument_group("the experiment (env ROLLOUT_<OPTION>)")
    which.add_argument("--url", default=env("url"), help="the service: its /version and /metrics")
    which.add_argument("--prompt", default=env("prompt", "rag_answer"), help="prompt name")
    which.add_argument(
        "--registry-dir",
        type=Path,
        default=Path(d) if (d := env("registry_dir")) else None,
        help="read production and canary versions from this registry instead of /version",
    )
    which.add_argument("--production-version", default=env("production_version"))
    which.add_argument("--canary-version", default=env("canary_version"))
    which.add_argument(
        "--canary-percentage",
        type=_percentage,
        default=env("canary_percentage"),
        help="the configured canary share, for the sample ratio check",
    )
    source = parser.add_argument_group("where the metrics are")
    source.add_argument(
        "--metrics-url",
        action="append",
        default=_list("metrics_url"),
        help="a /metrics URL; repeat for every replica (default: <--url>/metrics)",
    )
    source.add_argument(
        "--metrics-file",
        action="append",
        type=Path,
        default=[Path(p) for p in _list("metrics_file")],
        help="a saved /metrics page (repeatable)",
    )
    source.add_argument("--prometheus-url", default=env("prometheus_url"), help="Prometheus")
    source.add_argument(
        "--window-seconds",
        type=float,
        default=env("window_seconds", "86400"),
        help="with Prometheus: how far back the experiment goes (default one day)",
    )
    rules = parser.add_argument_group("how to decide")
    rules.add_argument(
        "--primary",
        choices=list(METRICS),
        default=env("primary", "quality"),
        help="the metric that picks the winner (default quality)",
    )
    rules.add_argument(
        "--guardrail",
        action="append",
        default=None,
        help="a rollout-policy metric that may veto the winner; repeatable "
        "(default: error_rate and slow_answers; env ROLLOUT_GUARDRAILS, comma-separated)",
    )
    rules.add_argument(
        "--min-samples",
        type=int,
        default=env("min_samples"),
        help="observations of the primary metric each variant needs (default: the policy's)",
    )
    rules.add_argument(
        "--policy",
        type=Path,
        default=Path(env("policy", str(DEFAULT_POLICY)) or ""),
        help="rollout policy: alpha, min_samples, guardrail margins (default rollout/policy.yaml)",
    )
    return parser


def _variants(args: argparse.Namespace) -> Variants:
    found = None
    if args.registry_dir is not None:
        found = variants_from_registry(args.registry_dir, args.prompt)
    elif args.url:
        found = variants_from_service(args.url, args.prompt)
    production = args.production_version or (found.production if found else None)
    canary = args.canary_version or (found.canary if found else None)
    percentage = args.canary_percentage or (found.canary_percentage if found else None)
    if not (production and canary and percentage):
        raise cli.ToolkitError(
            "name the experiment: --url or --registry-dir, or --production-version, "
            "--canary-version and --canary-percentage."
        )
    source = found.source if found else "options"
    return Variants(args.prompt, production, canary, percentage, source)


def _read(
    args: argparse.Namespace, variants: Variants, policy: Policy
) -> tuple[dict[str, ArmData], str]:
    wanted = queries(policy, args.guardrail)
    arms = variants.arms()
    if args.metrics_url or args.metrics_file:
        source = ExpositionSource(urls=args.metrics_url, files=args.metrics_file)
        where = ", ".join([*args.metrics_url, *map(str, args.metrics_file)])
        return source.read(wanted, arms), where
    if args.prometheus_url:
        where = f"{args.prometheus_url} (last {args.window_seconds:g} s)"
        return read_prometheus(args.prometheus_url, args.window_seconds, wanted, arms), where
    if args.url:
        url = f"{args.url.rstrip('/')}/metrics"
        return ExpositionSource(urls=[url]).read(wanted, arms), url
    raise cli.ToolkitError("say where the metrics are: --url, --metrics-url or --prometheus-url.")


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


def command(args: argparse.Namespace) -> cli.Outcome:
    """Read the metrics, analyse, render."""
    policy = load_policy(args.policy)
    args.guardrail = args.guardrail or _list("guardrails") or ["error_rate", "slow_answers"]
    variants = _variants(args)
    data, where = _read(args, variants, policy)
    report = analyze(
        data,
        variants,
        policy=policy,
        primary=args.primary,
        guardrails=args.guardrail,
        min_samples=args.min_samples,
    )
    report.source = where
    report.next_command = next_command(report, args.registry_dir)
    return cli.Outcome(
        status=report.status,
        exit_code=report.exit_code,
        data=report.to_dict(),
        errors=report.reasons if report.status == "srm" else [],
        text=render_text(report),
        markdown=render_markdown(report),
    )


# --- rendering ------------------------------------------------------------------------------

_HEADLINE = {"winner": "WINNER", "inconclusive": "NO WINNER YET", "srm": "SAMPLE RATIO MISMATCH"}


def _title(report: ExperimentReport) -> str:
    v = report.variants
    return f"{v.prompt} {v.production} (production) vs {v.canary} (canary {v.canary_percentage:g}%)"


def _interval(pair: tuple[float, float] | None) -> str:
    return f" [{number(pair[0])}, {number(pair[1])}]" if pair else ""


def render_text(report: ExperimentReport) -> str:
    """Human summary for stderr."""
    lines = [f"experiment {_HEADLINE[report.status]}: {_title(report)}", f"  {report.srm.note}"]
    for c in report.comparisons:
        lines.append(
            f"  {c.name:<10} production {number(c.production):>9}  canary {number(c.canary):>9}"
            f"  diff {number(c.difference)} [{number(c.ci_low)}, {number(c.ci_high)}]"
            f"  {c.reading}"
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
            f"| {number(c.difference)} [{number(c.ci_low)}, {number(c.ci_high)}] | {c.reading} |"
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    return cli.run(build_parser(), command, argv)


if __name__ == "__main__":
    sys.exit(main())
