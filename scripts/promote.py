"""Move a rollout forward: the next canary step, a given share, or full promotion.

Examples:
  python -m scripts.promote --to next                    # code canary 0 -> 5 -> 20 -> ...
  python -m scripts.promote --to 50
  python -m scripts.promote --to full                    # canary's version becomes stable
  python -m scripts.promote --switch green               # blue-green: green serves everyone
  python -m scripts.promote --target prompt --candidate v2 --to next   # start a prompt canary

Every call is idempotent: re-running it after an interruption finishes the same change.
Exit codes: 0 done, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from scripts.toolkit import cli, registry_ops
from scripts.toolkit.options import add_policy_option, add_target_options, build_target
from scripts.toolkit.policy import load_policy
from scripts.toolkit.targets import CodeTarget, PromptTarget


def build_parser() -> argparse.ArgumentParser:
    """Options of promote."""
    parser = cli.base_parser("python -m scripts.promote", __doc__.split("\n\n")[0])
    parser.add_argument(
        "--to",
        default=cli.env("to", "next"),
        help="`next` (the policy's next step), `full`, or a percentage",
    )
    parser.add_argument(
        "--switch",
        choices=["blue", "green"],
        default=None,
        help="blue-green: send all traffic to this color",
    )
    parser.add_argument(
        "--candidate",
        default=cli.env("candidate"),
        help="prompt rollouts: the version to make canary if none is",
    )
    add_policy_option(parser, "its steps")
    add_target_options(parser)
    return parser


def _percent(value: str) -> float:
    try:
        percent = float(value.rstrip("%"))
    except ValueError as exc:
        raise cli.ToolkitError(f"--to takes next, full or a percentage, not {value!r}.") from exc
    if not 0 < percent <= 100:
        raise cli.ToolkitError(f"--to {value}: a share must be above 0 and at most 100.")
    return percent


def command(args: argparse.Namespace) -> cli.Outcome:
    """Apply the promotion and report the new state."""
    target = build_target(args)
    if args.switch:
        if not isinstance(target, CodeTarget):
            raise cli.ToolkitError("--switch is for code (blue-green) rollouts.")
        state = target.backend.switch(args.switch)
        return _done(f"{args.switch} serves all traffic", state.to_dict())
    if isinstance(target, PromptTarget) and args.candidate:
        current = registry_ops.rollout_state(target.registry_dir, target.prompt)
        if current.canary is None:
            # Start the candidate as canary; `--to next` starts it at the policy's first step.
            if args.to == "full":
                first = 100.0
            elif args.to == "next":
                first = load_policy(args.policy).steps[0]
            else:
                first = _percent(args.to)
            registry_ops.start_canary(target.registry_dir, target.prompt, args.candidate, first)
            if args.to != "full":
                return _done(f"{args.candidate} is canary at {first:g}%", target.describe())
    before = target.canary_percent()
    if args.to == "full":
        target.finish()
        return _done("canary promoted to stable", target.describe())
    percent = load_policy(args.policy).next_step(before) if args.to == "next" else _percent(args.to)
    target.set_percent(percent)
    return _done(f"canary at {percent:g}% (was {before:g}%)", target.describe())


def _done(message: str, state: dict[str, object]) -> cli.Outcome:
    return cli.Outcome(
        status="promoted",
        exit_code=cli.EXIT_OK,
        data={"state": state},
        text=message,
        markdown=f"### Promote: {message}\n\n```\n{state}\n```",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    return cli.run(build_parser(), command, argv)


if __name__ == "__main__":
    sys.exit(main())
