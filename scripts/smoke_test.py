"""Post-deploy smoke test: the service is ready, runs the expected version, and answers well.

Checks `/healthz`, `/readyz` (a real model call), `/version` (optionally the expected
app_version), then asks a few golden questions (pinned to a prompt version with the admin
token when given) and requires answers without errors, with citations for answerable
questions, under a latency bound.

Example: python -m scripts.smoke_test --url http://127.0.0.1:8000 --expect-version abc1234
Exit codes: 0 passed, 1 a check failed, 2 usage error (bad options, dataset missing).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import asdict

from scripts.toolkit import cli
from scripts.toolkit.evaluation.dataset import DEFAULT_DATASET
from scripts.toolkit.report import table
from scripts.toolkit.smoke import smoke_test


def build_parser() -> argparse.ArgumentParser:
    parser = cli.base_parser("python -m scripts.smoke_test", __doc__.split("\n\n")[0])
    option = cli.option
    option(parser, "--url", type=cli.http_url, default="http://127.0.0.1:8000", help="the service")
    option(parser, "--expect-version", help="fail unless /version reports this app_version")
    option(parser, "--prompt-version", help="pin questions to this version (needs --admin-token)")
    option(parser, "--admin-token", help="the service's APP_ADMIN_TOKEN, for pinning")
    option(parser, "--dataset", default=DEFAULT_DATASET, help="golden JSONL")
    option(parser, "--questions", type=cli.positive(int), default=5, help="questions to ask")
    option(
        parser, "--max-latency", type=cli.positive(float), default=5.0,
        help="seconds an answer may take at most",
    )  # fmt: skip
    option(parser, "--timeout", type=cli.positive(float), default=10.0, help="seconds a request")
    return parser


def command(args: argparse.Namespace) -> cli.Outcome:
    checks = smoke_test(**cli.options(args))
    failed = [c for c in checks if not c.ok]
    rows = table(
        ["check", "ok", "detail"],
        ([c.check, "yes" if c.ok else "**no**", c.detail] for c in checks),
    )
    status = "failed" if failed else "passed"
    return cli.Outcome(
        status=status,
        exit_code=cli.EXIT_FAILED if failed else cli.EXIT_OK,
        data={"url": args.url, "checks": [asdict(c) for c in checks]},
        text="\n".join(f"{'ok  ' if c.ok else 'FAIL'} {c.check}: {c.detail}" for c in checks),
        markdown="\n".join([f"### Smoke test of {args.url}: **{status}**", "", *rows]),
    )


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(build_parser, command, argv)


if __name__ == "__main__":
    sys.exit(main())
