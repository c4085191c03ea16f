"""Conventions every script shares: exit codes, the JSON envelope, the step summary, env defaults.

Exit codes (one table for all scripts, documented in DEPLOYING.md):

====  ===========================================================================
0     success: gate passed, step promoted, rollback done, nothing to do
1     gate failed, or the rollout was rolled back
2     usage or configuration error (bad option, invalid policy, unreachable target)
3     inconclusive: not enough data yet; the caller decides (wait, or roll back)
4     traffic state unknown: a rollback could not reach the cluster (or its write was not
      confirmed) in time; traffic may still go to the canary: run the rollback again
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
from urllib.parse import urlsplit

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INCONCLUSIVE = 3
EXIT_TRAFFIC_UNKNOWN = 4  # a rollback could not confirm where traffic goes: never success
# Each tool's verdict as its exit code: the quality gate's, the monitor's, the A/B report's.
EXIT_BY_VERDICT = {
    **dict.fromkeys(("pass", "promote", "winner"), EXIT_OK),
    **dict.fromkeys(("fail", "rollback", "srm"), EXIT_FAILED),
    **dict.fromkeys(("inconclusive", "hold"), EXIT_INCONCLUSIVE),
}

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


def env_name(option: str) -> str:
    """The variable an option falls back to: `--platform-dir` reads `ROLLOUT_PLATFORM_DIR`."""
    return ENV_PREFIX + option.lstrip("-").upper().replace("-", "_")


def option(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    name: str,
    *,
    help: str,  # argparse's own word
    default: Any = None,
    type: Callable[[str], Any] = str,  # argparse's own word
    choices: Sequence[Any] | None = None,
    flag: bool = False,
    repeat: bool = False,
    metavar: str | None = None,
    default_text: str | None = None,
) -> None:
    """Add `--name` with its `ROLLOUT_<NAME>` fallback, shown in the help: a flag is set by
    `true`/`1`/`yes`, a repeatable option takes a comma-separated list, any other value is
    parsed by `type` as if given on the command line (a bad one is a usage error)."""
    variable = env_name(name)
    raw = os.environ.get(variable)
    if default_text is None and isinstance(default, str | int | float) and default is not False:
        default_text = str(default)
    shown = f" (env {variable}" + (f"; default {default_text}" if default_text else "") + ")"
    if raw is not None and choices is not None and not repeat and not flag:
        try:
            valid = type(raw) in choices
        except (TypeError, ValueError, argparse.ArgumentTypeError):
            valid = False
        if not valid:
            listed = ", ".join(str(c) for c in choices)
            raise ToolkitError(f"{variable} must be one of {listed}, not {raw!r}.")
    if flag:
        value = raw.strip().lower() in ("1", "true", "yes") if raw is not None else bool(default)
        parser.add_argument(name, action="store_true", default=value, help=help + shown)
        return
    if repeat:
        items = [v.strip() for v in raw.split(",") if v.strip()] if raw is not None else None
        try:
            values = [type(v) for v in items] if items is not None else list(default or [])
        except (TypeError, ValueError, argparse.ArgumentTypeError) as exc:
            raise ToolkitError(f"{variable}: {exc}.") from exc
        parser.add_argument(
            name, action="append", type=type, default=values, choices=choices,
            metavar=metavar, help=help + shown + " (repeatable)",
        )  # fmt: skip
        return
    # argparse parses a string default with `type`, so the variable is checked like the option.
    parser.add_argument(
        name, type=type, choices=choices, metavar=metavar, help=help + shown,
        default=raw if raw is not None else default,
    )  # fmt: skip


def positive(kind: Callable[[str], float]) -> Callable[[str], Any]:
    """An argparse type: a number of `kind` above zero."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def http_url(text: str) -> str:
    """An argparse type: an http(s) URL with a host."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) URL")
    return text


def base_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """An argparse parser with the options every script has."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    add_output_option(parser)
    return parser


def add_output_option(parser: argparse.ArgumentParser) -> None:
    """--output: `text` on stderr only, or also the JSON envelope on stdout."""
    option(
        parser, "--output", choices=["text", "json"], default="text",
        help="`json` prints the result envelope on stdout",
    )  # fmt: skip


def options(args: argparse.Namespace) -> dict[str, Any]:
    """The parsed options as the keyword arguments of the command's one library call, whose
    parameters are named after them (`--output` is for the renderer)."""
    return {k: v for k, v in vars(args).items() if k != "output"}


def append_step_summary(markdown: str) -> None:
    """Append to `$GITHUB_STEP_SUMMARY` when set (GitHub Actions renders it on the run page)."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path and markdown:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(markdown.rstrip() + "\n\n")


def run(
    build_parser: Callable[[], argparse.ArgumentParser],
    command: Callable[[argparse.Namespace], Outcome],
    argv: Sequence[str] | None,
) -> int:
    """Parse, run `command`, render its outcome; ToolkitError becomes `error: ...` and its code
    (a bad `ROLLOUT_*` value too: the parser reads them when it is built)."""
    output = "text"
    try:
        args = build_parser().parse_args(argv)
        output = args.output
        outcome = command(args)
    except SystemExit as exc:  # argparse: --help exits 0, a usage error 2
        return int(exc.code or 0)
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
        envelope = {
            "schema_version": SCHEMA_VERSION,
            "status": outcome.status,
            "exit_code": outcome.exit_code,
            "data": outcome.data,
            "errors": outcome.errors,
        }
        print(json.dumps(envelope, indent=2, default=str))
    append_step_summary(outcome.markdown)
    return outcome.exit_code
