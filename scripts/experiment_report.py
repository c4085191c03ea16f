"""A/B experiment report: production vs canary version of a prompt, from the service's metrics.

Examples:
  python -m scripts.experiment_report --url http://127.0.0.1:8000          # /version + /metrics
  python -m scripts.experiment_report --registry-dir registry \\
      --metrics-url http://10.0.0.1:8000/metrics --metrics-url http://10.0.0.2:8000/metrics
  python -m scripts.experiment_report --url http://svc:8000 \\
      --prometheus-url http://prometheus:9090 --window-seconds 604800
  python -m scripts.experiment_report --url http://svc:8000 \\
      --database-url postgresql://report@db:5432/service     # survives restarts
  python -m scripts.experiment_report --production-version v1 --canary-version v2 \\
      --canary-percentage 50 --metrics-file saved-metrics.txt

Exit codes: 0 a winner, 1 sample ratio mismatch (fix the experiment first), 2 usage or
configuration error, 3 no winner yet. How it decides:
scripts/toolkit/experiment/winner.py.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from scripts.toolkit import cli
from scripts.toolkit.experiment.command import experiment_report
from scripts.toolkit.options import add_policy_option


def _percentage(text: str) -> float:
    value = float(text.rstrip("%"))
    if not 0 < value < 100:
        raise argparse.ArgumentTypeError(f"must be above 0 and below 100, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = cli.base_parser("python -m scripts.experiment_report", __doc__.split("\n\n")[0])
    option = cli.option
    which = parser.add_argument_group("the experiment")
    option(which, "--url", help="the service: its /version and /metrics")
    option(which, "--prompt", default="rag_answer", help="prompt name")
    option(
        which, "--registry-dir", type=Path,
        help="read production and canary versions from this registry instead of /version",
    )  # fmt: skip
    option(which, "--production-version", help="the production version (default: /version's)")
    option(which, "--canary-version", help="the canary version (default: /version's)")
    option(
        which, "--canary-percentage", type=_percentage,
        help="the configured canary share, for the sample ratio check",
    )  # fmt: skip
    source = parser.add_argument_group("where the metrics are")
    option(
        source, "--metrics-url", repeat=True,
        help="a /metrics URL, one per replica (default: <--url>/metrics)",
    )  # fmt: skip
    option(source, "--metrics-file", repeat=True, type=Path, help="a saved /metrics page")
    option(
        source, "--database-url",
        help="the service's database (its APP_DATABASE_URL): counts that survive restarts",
    )  # fmt: skip
    option(source, "--prometheus-url", help="Prometheus base URL")
    option(
        source, "--window-seconds", type=cli.positive(float), default=86400.0,
        help="with Prometheus or the database: how far back the experiment goes",
    )  # fmt: skip
    rules = parser.add_argument_group("how to decide")
    option(
        rules, "--primary",
        help="the metric that picks the winner (default: the policy's experiment.primary)",
    )  # fmt: skip
    option(
        rules, "--guardrail", repeat=True,
        help="a rollout-policy metric that may veto the winner "
        "(default: the policy's experiment.guardrails)",
    )  # fmt: skip
    option(
        rules, "--min-samples", type=cli.positive(int),
        help="observations of the primary metric each variant needs (default: the policy's)",
    )  # fmt: skip
    add_policy_option(rules, "alpha, min_samples, the metrics and the guardrails")
    return parser


def command(args: argparse.Namespace) -> cli.Outcome:
    return experiment_report(**cli.options(args))


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(build_parser, command, argv)


if __name__ == "__main__":
    sys.exit(main())
