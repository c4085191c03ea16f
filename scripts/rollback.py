"""Roll back: every user goes back to the last good version, now.

Examples:
  python -m scripts.rollback                              # code: canary weight 0, canary retired
  python -m scripts.rollback --switch blue                # blue-green: blue serves everyone again
  python -m scripts.rollback --target prompt --prompt rag_answer   # retire the prompt canary

Rollback never depends on the canary being healthy: traffic moves first, clean-up follows.
Idempotent: a second run finds nothing to undo and succeeds. Exit codes: 0 done, 2 usage or
configuration error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from scripts.toolkit import cli
from scripts.toolkit.options import add_target_options, build_target
from scripts.toolkit.targets import CodeTarget


def build_parser() -> argparse.ArgumentParser:
    """Options of rollback."""
    parser = cli.base_parser("python -m scripts.rollback", __doc__.split("\n\n")[0])
    parser.add_argument(
        "--switch",
        choices=["blue", "green"],
        default=cli.env("switch"),
        help="blue-green: the color to send all traffic back to",
    )
    parser.add_argument(
        "--reason",
        default=cli.env("reason", "manual rollback"),
        help="why, for the record (env ROLLOUT_REASON)",
    )
    add_target_options(parser)
    return parser


def command(args: argparse.Namespace) -> cli.Outcome:
    """Roll back and report the state it leaves."""
    target = build_target(args)
    if args.switch:
        if not isinstance(target, CodeTarget):
            raise cli.ToolkitError("--switch is for code (blue-green) rollouts.")
        state = target.backend.switch(args.switch).to_dict()
        message = f"{args.switch} serves all traffic again"
    else:
        target.rollback()
        state = target.describe()
        message = "canary rolled back; stable serves all traffic"
    return cli.Outcome(
        status="rolled_back",
        exit_code=cli.EXIT_OK,
        data={"state": state, "reason": args.reason},
        text=f"{message} ({args.reason})",
        markdown=f"### Rollback: {message}\n\nReason: {args.reason}\n\n```\n{state}\n```",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    return cli.run(build_parser(), command, argv)


if __name__ == "__main__":
    sys.exit(main())
