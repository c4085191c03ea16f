"""Move a rollout forward: the next canary step, a given share, or full promotion.

Examples:
  python -m scripts.promote --to next                    # code canary 0 -> 5 -> 20 -> ...
  python -m scripts.promote --to 50
  python -m scripts.promote --to full                    # canary's version becomes stable
  python -m scripts.promote --switch green               # blue-green: green serves everyone
  python -m scripts.promote --target prompt --add examples/prompts/rag_answer/v2.yaml
                                                         # register v2: retired, no traffic
  python -m scripts.promote --target prompt --candidate v2 --to next   # start a prompt canary
  python -m scripts.promote --target prompt --candidate v1 --to full   # v1 production again

  python -m scripts.promote --backend gateway-api --namespace ai-staging --to 20 --dry-run
                                                         # a cluster: print the requests only

Every call is idempotent: re-running it after an interruption finishes the same change.
Exit codes: 0 done, 1 the canary's pods are not ready (no traffic moved to them), 2 usage or
configuration error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from scripts.toolkit import cli, rollout_ops
from scripts.toolkit.options import add_policy_option, add_target_options, build_target
from scripts.toolkit.platform.tracks import SWITCHABLE
from scripts.toolkit.targets import RolloutOutcome


def build_parser() -> argparse.ArgumentParser:
    """Options of promote."""
    parser = cli.base_parser("python -m scripts.promote", __doc__.split("\n\n")[0])
    cli.option(
        parser, "--to", default="next", help="`next` (the policy's next step), `full`, or a share"
    )
    cli.option(
        parser, "--switch", choices=SWITCHABLE, help="blue-green: send all traffic to this track"
    )
    cli.option(
        parser, "--candidate",
        help="prompt rollouts: the version to make canary if none is (with --to full: to make "
        "production at once, e.g. to revert a promotion)",
    )  # fmt: skip
    cli.option(
        parser, "--add", type=Path,
        help="prompt rollouts: register this prompt version file (or model version folder) in "
        "the registry the rollout targets, retired with no traffic",
    )  # fmt: skip
    add_policy_option(parser, "its steps")
    add_target_options(parser)
    return parser


def command(args: argparse.Namespace) -> cli.Outcome:
    """Apply the promotion and report the state it leaves."""
    moved = rollout_ops.promote(
        build_target(args),
        to=args.to,
        switch=args.switch,
        candidate=args.candidate,
        policy=args.policy,
        add=args.add,
    )
    return cli.Outcome(
        status=RolloutOutcome.PROMOTED,
        exit_code=cli.EXIT_OK,
        data={"state": moved.state},
        text=moved.message,
        markdown=f"### Promote: {moved.message}\n\n```\n{moved.state}\n```",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    return cli.run(build_parser, command, argv)


if __name__ == "__main__":
    sys.exit(main())
