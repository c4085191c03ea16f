"""One `run:` step as GitHub runs it: `bash --noprofile --norc -eo pipefail {0}`, its output
read for workflow commands, and cancelled the way the runner cancels (SIGINT, SIGTERM 7.5 s
later, then the whole process group killed 2.5 s after that)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess  # nosec B404  # bash on a script file we wrote
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SHELL = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]
# A step starts with SIGINT and SIGTERM at their defaults, as under GitHub's runner: a signal
# ignored on entry cannot be trapped by bash, and a runner started in the background of a
# non-interactive shell (nohup ... &, some CI systems) inherits SIGINT ignored.
DEFAULT_SIGNALS = [
    sys.executable,
    "-c",
    "import os, signal, sys\n"
    "for s in (signal.SIGINT, signal.SIGTERM): signal.signal(s, signal.SIG_DFL)\n"
    "os.execvp(sys.argv[1], sys.argv[1:])",
]
SIGTERM_AFTER = 7.5  # seconds after SIGINT, as GitHub's runner
SIGKILL_AFTER = 10.0


@dataclass
class Finished:
    """How a step's process ended."""

    exit_code: int
    interrupted: bool  # it was signalled (cancelled or timed out)
    seconds: float


def run_script(
    script: Path,
    *,
    env: dict[str, str],
    cwd: Path,
    stop: Callable[[], bool],
    on_line: Callable[[str], None],
    groups: list[int],
) -> Finished:
    """Run `script` with bash; `stop()` is polled and, once true, starts the cancel sequence.
    The process group's id is appended to `groups` (the job kills what is left at its end)."""
    started = time.monotonic()
    process = subprocess.Popen(  # noqa: S603  # nosec B603  # bash on our own script file
        [*DEFAULT_SIGNALS, *SHELL, str(script)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    groups.append(process.pid)
    assert process.stdout is not None  # noqa: S101  # nosec B101  # set by Popen
    stream = process.stdout

    def read() -> None:
        for raw in iter(stream.readline, b""):
            on_line(raw.decode("utf-8", "replace").rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    signalled_at: float | None = None
    sent: set[str] = set()
    while process.poll() is None:
        time.sleep(0.05)
        if signalled_at is None and stop():
            signalled_at = time.monotonic()
            on_line("##[cancel] SIGINT to the step's shell; SIGTERM follows in 7.5 s")
            _signal(process.pid, signal.SIGINT)
        if signalled_at is None:
            continue
        waited = time.monotonic() - signalled_at
        if waited >= SIGTERM_AFTER and "term" not in sent:
            sent.add("term")
            on_line("##[cancel] SIGTERM to the step's shell")
            _signal(process.pid, signal.SIGTERM)
        if waited >= SIGKILL_AFTER and "kill" not in sent:
            sent.add("kill")
            on_line("##[cancel] the step's process tree killed")
            _kill_group(process.pid)
    reader.join(timeout=5)
    return Finished(
        exit_code=process.returncode,
        interrupted=signalled_at is not None,
        seconds=time.monotonic() - started,
    )


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def kill_groups(groups: list[int]) -> None:
    """What a job's steps left running (background processes), killed at the job's end, as the
    runner's orphan clean-up does (servers that detached into their own session are kept)."""
    for pgid in groups:
        _kill_group(pgid)
    groups.clear()
