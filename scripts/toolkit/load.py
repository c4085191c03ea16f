"""Run locust headless on the project's locustfile (the demo's load and the benchmarks')."""

from __future__ import annotations

import sys
from pathlib import Path

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"


def locust_args(host: str, *, users: int, seconds: float, extra: tuple[str, ...] = ()) -> list[str]:
    """Arguments after `python -m locust`: `users` users started at once against `host`,
    stopping after `seconds` (a bound on every run), summary only."""
    return [
        "-f", str(LOCUSTFILE), "--headless", "--only-summary",
        "-u", str(users), "-r", str(users), "-t", f"{max(1, round(seconds))}s",
        "--host", host, *extra,
    ]  # fmt: skip


def locust_command(
    host: str, *, users: int, seconds: float, extra: tuple[str, ...] = ()
) -> list[str]:
    """The whole command line, with this interpreter's locust."""
    return [
        sys.executable,
        "-m",
        "locust",
        *locust_args(host, users=users, seconds=seconds, extra=extra),
    ]
