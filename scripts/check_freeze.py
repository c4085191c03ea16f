"""Deploy freeze: may a rollout to this environment start now (rollout/freeze.yaml)?

Examples:
  python -m scripts.check_freeze                                   # production, now
  python -m scripts.check_freeze --at 2026-12-25T10:00:00+00:00    # at another moment
  python -m scripts.check_freeze --override-reason "hotfix for the login outage"

Inside a window the rollout is refused unless a person gives a reason to override it; the
decision, and the reason, go into the step summary.
Exit codes: 0 open (or overridden), 1 frozen, 2 usage error or an invalid freeze file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from contract.files import REPO_ROOT
from scripts.toolkit import cli
from scripts.toolkit.freeze import DEFAULT_FREEZE_FILE, active_window, load_freeze


def moment(text: str) -> datetime:
    """An argparse type: an ISO 8601 time with its offset."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs its UTC offset, e.g. +00:00")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = cli.base_parser("python -m scripts.check_freeze", __doc__.split("\n\n")[0])
    option = cli.option
    option(
        parser, "--freeze-file", default="", default_text="rollout/freeze.yaml",
        help="the freeze windows",
    )  # fmt: skip
    option(parser, "--environment", default="production", help="the environment to deploy to")
    option(parser, "--at", type=moment, help="the moment to check (default: now)")
    option(
        parser, "--override-reason", default="",
        help="deploy inside a window anyway, for this reason (recorded)",
    )  # fmt: skip
    return parser


def command(args: argparse.Namespace) -> cli.Outcome:
    path = Path(args.freeze_file) if args.freeze_file else DEFAULT_FREEZE_FILE
    freeze = load_freeze(path if path.is_absolute() else REPO_ROOT / path)
    at: datetime = args.at or datetime.now(UTC)
    found = active_window(freeze, args.environment, at)
    reason = args.override_reason.strip()
    data = {"environment": args.environment, "at": at.isoformat(), "window": None,
            "until": None, "override_reason": reason or None}  # fmt: skip
    if found is None:
        text = f"{args.environment} is open for rollouts ({at:%a %Y-%m-%d %H:%M %Z})"
        return cli.Outcome(
            "open", cli.EXIT_OK, data, text=text, markdown=f"### Deploy freeze: {text}"
        )
    window, until = found
    data.update(window=window.name, until=until.isoformat())
    frozen = (
        f"{args.environment} is frozen by the window '{window.name}' "
        f"until {until:%a %Y-%m-%d %H:%M %Z}"
    )
    if reason:
        text = f"{frozen}; overridden: {reason}"
        markdown = f"### Deploy freeze overridden\n\n{frozen}.\n\n**Override reason:** {reason}"
        return cli.Outcome("overridden", cli.EXIT_OK, data, text=text, markdown=markdown)
    text = (
        f"{frozen}: the rollout does not start. To deploy anyway, run the workflow by hand with "
        "a freeze-override-reason (it is recorded)."
    )
    return cli.Outcome(
        "frozen", cli.EXIT_FAILED, data, text=text, markdown=f"### Deploy freeze: {text}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(build_parser, command, argv)


if __name__ == "__main__":
    sys.exit(main())
