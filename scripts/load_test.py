"""Load test: locust users asking golden-set questions, judged on the rollout policy's limits.

Examples:
  python -m scripts.load_test --url http://127.0.0.1:8000                # 10 users for 60 s
  python -m scripts.load_test --url "$SERVICE_URL" --users 10 --duration 120

The share of failed answers must stay within the `limit` of the policy's `error_rate` metric
(the same absolute limit the canary is held to), and the service must answer at all.
Exit codes: 0 passed, 1 a limit was broken, 2 usage error.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess  # nosec B404  # locust, fixed argv
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from scripts.toolkit import cli
from scripts.toolkit.load import locust_command
from scripts.toolkit.options import add_policy_option
from scripts.toolkit.policy import load_policy
from scripts.toolkit.report import table

ERROR_METRIC = "error_rate"


def build_parser() -> argparse.ArgumentParser:
    parser = cli.base_parser("python -m scripts.load_test", __doc__.split("\n\n")[0])
    option = cli.option
    option(parser, "--url", type=cli.http_url, default="http://127.0.0.1:8000", help="the service")
    option(parser, "--users", type=cli.positive(int), default=10, help="simulated users")
    option(parser, "--duration", type=cli.positive(float), default=60.0, help="seconds of load")
    option(parser, "--rate", type=cli.positive(float), default=1.0, help="answers/s per user")
    add_policy_option(parser, "the limit of its error_rate metric")
    return parser


def command(args: argparse.Namespace) -> cli.Outcome:
    policy = load_policy(args.policy)
    limit = next((m.limit for m in policy.metrics if m.name == ERROR_METRIC), None)
    with tempfile.TemporaryDirectory(prefix="load-") as folder:
        prefix = str(Path(folder) / "load")
        run = subprocess.run(  # noqa: S603  # nosec B603  # locust, fixed argv
            locust_command(
                args.url, users=args.users, seconds=args.duration, extra=("--csv", prefix)
            ),
            env={**os.environ, "LOAD_RATE": str(args.rate)},
            capture_output=True,
            text=True,
            timeout=args.duration + 120,
            check=False,
        )
        stats = Path(prefix + "_stats.csv")
        if not stats.exists():
            raise cli.ToolkitError(
                f"locust wrote no statistics (exit {run.returncode}): {run.stderr.strip()[-300:]}"
            )
        with stats.open(encoding="utf-8") as handle:
            total = next(r for r in csv.DictReader(handle) if r["Name"] == "Aggregated")
    requests, failures = int(total["Request Count"]), int(total["Failure Count"])
    share = failures / requests if requests else 1.0
    reasons = []
    if requests == 0:
        reasons.append("the service answered no request")
    if limit is not None and share > limit:
        reasons.append(f"{share:.1%} of answers failed, above the policy's limit {limit:.1%}")
    passed = not reasons
    rows = [
        ["users", str(args.users)],
        ["duration", f"{args.duration:g} s"],
        ["answers", str(requests)],
        ["failed", f"{failures} ({share:.1%})"],
        ["limit (policy error_rate)", f"{limit:.1%}" if limit is not None else "none"],
        ["p95 latency", f"{total['95%']} ms"],
        ["answers/s", f"{float(total['Requests/s']):.1f}"],
    ]
    verdict = "pass" if passed else "fail"
    text = f"load test: {verdict}: " + (
        "; ".join(reasons) or f"{requests} answers, {share:.1%} failed"
    )
    return cli.Outcome(
        status=verdict,
        exit_code=cli.EXIT_OK if passed else cli.EXIT_FAILED,
        data={
            "requests": requests,
            "failures": failures,
            "failure_share": share,
            "limit": limit,
            "p95_ms": total["95%"],
            "reasons": reasons,
        },
        text=text,
        markdown="\n".join([f"### Load test: {verdict}", "", *table(["", ""], rows)]),
    )


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(build_parser, command, argv)


if __name__ == "__main__":
    sys.exit(main())
