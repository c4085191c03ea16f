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
configuration error, 3 no winner yet. How it decides:
scripts/toolkit/experiment/analysis.py.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from scripts.toolkit import cli
from scripts.toolkit.experiment import DEFAULT_GUARDRAILS, METRICS, experiment_report
from scripts.toolkit.options import add_policy_option


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
    add_policy_option(rules, "alpha, min_samples and guardrail margins")
    return parser


def command(args: argparse.Namespace) -> cli.Outcome:
    """The options, mapped to one library call."""
    return experiment_report(
        policy_path=args.policy,
        prompt=args.prompt,
        url=args.url,
        registry_dir=args.registry_dir,
        production_version=args.production_version,
        canary_version=args.canary_version,
        canary_percentage=args.canary_percentage,
        metrics_urls=args.metrics_url,
        metrics_files=args.metrics_file,
        prometheus_url=args.prometheus_url,
        window_seconds=args.window_seconds,
        primary=args.primary,
        guardrails=args.guardrail or _list("guardrails") or DEFAULT_GUARDRAILS,
        min_samples=args.min_samples,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    return cli.run(build_parser(), command, argv)


if __name__ == "__main__":
    sys.exit(main())
