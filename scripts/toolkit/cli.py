"""Conventions every script shares: exit codes, the JSON envelope, the step summary, env defaults.

Exit codes (one table for all scripts, documented in DEPLOYING.md):

====  ===========================================================================
0     success: gate passed, step promoted, rollback done, nothing to do
1     gate failed, or the rollout was rolled back
2     usage or configuration error (bad option, invalid policy, unreachable target)
3     inconclusive: not enough data yet; the caller decides (wait, or roll back)
====  ===========================================================================
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INCONCLUSIVE = 3

SCHEMA_VERSION = 1
ENV_PREFIX = "ROLLOUT_"


class ToolkitError(Exception):
    """An expected failure: printed as one `error: ...` line, exit code 2 unless said otherwise."""

    def __init__(self, message: str, *, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass
class Outcome:
    """What a command did: rendered as text on stderr, JSON on stdout, Markdown in the summary."""

    status: str
    exit_code: int
    data: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    text: str = ""
    markdown: str = ""


def env(name: str, default: str | None = None) -> str | None:
    """`ROLLOUT_<NAME>` from the environment, for argparse defaults."""
    return os.environ.get(ENV_PREFIX + name.upper().replace("-", "_"), default)


def env_float(name: str, default: float) -> float:
    """A float option's environment default; a bad value is a usage error."""
    raw = env(name)
    try:
        return float(raw) if raw is not None else default
    except ValueError as exc:
        raise ToolkitError(f"{ENV_PREFIX}{name.upper()} must be a number, not {raw!r}.") from exc


def base_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """An argparse parser with the options every script has."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument(
        "--output",
        choices=["text", "json"],
        default=env("output", "text"),
        help="`json` prints the result envelope on stdout (env ROLLOUT_OUTPUT)",
    )
    return parser


def envelope(outcome: Outcome) -> dict[str, Any]:
    """The versioned JSON envelope of an outcome."""
    return {
        "schema_version": SCHEMA_VERSION,
        "status": outcome.status,
        "exit_code": outcome.exit_code,
        "data": outcome.data,
        "errors": outcome.errors,
    }


def append_step_summary(markdown: str) -> None:
    """Append to `$GITHUB_STEP_SUMMARY` when set (GitHub Actions renders it on the run page)."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path and markdown:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(markdown.rstrip() + "\n\n")


def run(
    parser: argparse.ArgumentParser,
    command: Callable[[argparse.Namespace], Outcome],
    argv: Sequence[str] | None,
) -> int:
    """Parse, run `command`, render its outcome; ToolkitError becomes `error: ...` and its code."""
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help exits 0, a usage error 2
        return int(exc.code or 0)
    output = getattr(args, "output", "text")
    try:
        outcome = command(args)
    except ToolkitError as exc:
        outcome = Outcome(
            status="error",
            exit_code=exc.exit_code,
            errors=[exc.message],
            text=f"error: {exc.message}",
        )
    if outcome.text:
        print(outcome.text, file=sys.stderr)
    if output == "json":
        print(json.dumps(envelope(outcome), indent=2, default=str))
    append_step_summary(outcome.markdown)
    return outcome.exit_code
