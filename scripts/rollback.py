"""Roll back: every user goes back to the last good version, now.

Examples:
  python -m scripts.rollback                              # code: canary weight 0, canary retired
  python -m scripts.rollback                              # blue-green: back to the track that
                                                          #   served before the last switch
  python -m scripts.rollback --switch blue                # blue-green: blue serves everyone
  python -m scripts.rollback --target prompt --prompt rag_answer   # retire the prompt canary
  python -m scripts.rollback --backend gateway-api --namespace ai-staging   # a cluster
  python -m scripts.rollback --backend gateway-api --dry-run      # print the requests only

Rollback never depends on the canary being healthy: traffic moves first, clean-up follows.
On a cluster the traffic move is the first write, bounded by --api-timeout.
Idempotent: a second run finds nothing to undo and succeeds. It reports the state it leaves.
Exit codes: 0 done, 2 usage or configuration error, 4 traffic state unknown (the cluster could
not be reached, or the move not confirmed, in time: run it again).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from scripts.toolkit import cli, rollout_ops
from scripts.toolkit.options import add_target_options, build_target
from scripts.toolkit.platform.tracks import SWITCHABLE
from scripts.toolkit.targets import RolloutOutcome


def build_parser() -> argparse.ArgumentParser:
    parser = cli.base_parser("python -m scripts.rollback", __doc__.split("\n\n")[0])
    cli.option(
        parser, "--switch", choices=SWITCHABLE,
        help="blue-green: the track to send all traffic to (default: the one before the switch)",
    )  # fmt: skip
    cli.option(parser, "--reason", default="manual rollback", help="why, for the record")
    add_target_options(parser)
    return parser


def command(args: argparse.Namespace) -> cli.Outcome:
    moved = rollout_ops.rollback(build_target(args), switch=args.switch)
    return cli.Outcome(
        status=RolloutOutcome.ROLLED_BACK,
        exit_code=cli.EXIT_OK,
        data={"state": moved.state, "reason": args.reason},
        text=f"{moved.message} ({args.reason})",
        markdown=f"### Rollback: {moved.message}\n\nReason: {args.reason}\n\n"
        f"```\n{moved.state}\n```",
    )


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(build_parser, command, argv)


if __name__ == "__main__":
    sys.exit(main())
