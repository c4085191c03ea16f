"""Offline quality gate: the golden dataset against a candidate and a baseline, side by side.

Examples:
  # a prompt version against production, on one service (pinned with the admin token; on the
  # local platform, --url its router: the token comes from its state file)
  python -m scripts.evaluate_quality --url http://127.0.0.1:8000 --candidate-version v2
  # another service: its APP_ADMIN_TOKEN, and the result written next to the model version
  ROLLOUT_ADMIN_TOKEN=... python -m scripts.evaluate_quality --url http://staging:8000 \\
      --candidate-version v2 --write-evaluation auto --registry-dir registry
  # two deployments, e.g. a code canary against stable (whatever each serves)
  python -m scripts.evaluate_quality --candidate-url http://canary:8000 \\
      --baseline-url http://stable:8000

Exit codes: 0 the candidate passes, 1 it fails the gate, 2 usage or configuration error
(service unreachable, unknown version, bad policy), 3 inconclusive (too few cases).
How the scores, intervals and the gate are defined: scripts/toolkit/evaluation/ (scoring.py,
gate.py) and eval/README.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from scripts.toolkit import cli
from scripts.toolkit.evaluation.command import quality_gate
from scripts.toolkit.options import add_platform_option, add_policy_option, platform_admin_token


def build_parser() -> argparse.ArgumentParser:
    """Options of evaluate_quality."""
    parser = cli.base_parser("python -m scripts.evaluate_quality", __doc__.split("\n\n")[0])
    option = cli.option
    arms = parser.add_argument_group("what to compare")
    option(arms, "--url", help="the service, for pinned versions")
    option(
        arms,
        "--candidate-version",
        help="prompt version to evaluate, pinned with the admin headers",
    )
    option(
        arms, "--baseline-version",
        help="prompt version to compare with (default: the service's production version)",
    )  # fmt: skip
    option(arms, "--candidate-url", help="candidate service")
    option(arms, "--baseline-url", help="baseline service")
    option(arms, "--prompt", default="rag_answer", help="prompt name")
    option(
        arms, "--admin-token",
        help="the service's APP_ADMIN_TOKEN, needed to pin versions (prefer the variable; "
        "default on the local platform: its own)",
    )  # fmt: skip
    add_platform_option(arms)
    run = parser.add_argument_group("how to run")
    add_policy_option(run, "its `evaluation:` section")
    option(run, "--dataset", help="golden JSONL (default: the policy's)")
    option(
        run, "--limit", type=cli.positive(int),
        help="only the first N cases (quick checks; gate on the full set)",
    )  # fmt: skip
    option(
        run, "--concurrency", type=cli.positive(int), default=8,
        help="questions in flight at once",
    )  # fmt: skip
    option(run, "--timeout", type=cli.positive(float), default=30.0, help="seconds per request")
    option(
        run, "--retries", type=int, choices=range(6), default=2,
        help="retries of a request that could not connect; nothing else is retried",
    )  # fmt: skip
    out = parser.add_argument_group("the registry record")
    option(
        out, "--write-evaluation",
        help="write evaluation.json here; `auto` = the candidate's model folder in --registry-dir",
    )  # fmt: skip
    option(
        out, "--registry-dir", type=Path, default=Path("registry"),
        default_text="registry/", help="registry folder for --write-evaluation auto",
    )  # fmt: skip
    return parser


def command(args: argparse.Namespace) -> cli.Outcome:
    """The options, mapped to one library call; on the local platform, its admin token."""
    options = cli.options(args)
    platform_dir = options.pop("platform_dir")
    urls = [args.url, args.candidate_url, args.baseline_url]
    token = args.admin_token or platform_admin_token(platform_dir, urls)
    return quality_gate(**{**options, "admin_token": token})


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    return cli.run(build_parser, command, argv)


if __name__ == "__main__":
    sys.exit(main())
