"""Run Python modules of a checkout (head, or the live release's worktree) as child processes.

The toolkit never imports the service: the gate runs `python -m app.db ...`, `python -m app`
and the checkout's own tests from the checkout's folder, its `app` package first on the path.
"""

from __future__ import annotations

import os
import subprocess  # nosec B404  # this interpreter with a fixed argv, never a shell
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from contract.settings import PREFIX


def checkout_env(checkout: Path, settings: Mapping[str, str] = {}) -> dict[str, str]:  # read only
    """This environment without APP_* settings, the checkout first on the path, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(PREFIX)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(checkout), os.environ.get("PYTHONPATH")]))
    return {**env, **settings}


def run_python(
    checkout: Path,
    args: Sequence[str],
    *,
    settings: Mapping[str, str] = {},  # read only
    timeout: float = 300.0,
) -> subprocess.CompletedProcess[str]:
    """`python args...` in `checkout` (output captured as text); a timeout counts as a failure."""
    try:
        return subprocess.run(  # noqa: S603  # nosec B603  # this interpreter, argv list
            [sys.executable, *args], cwd=checkout, env=checkout_env(checkout, settings),
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
        return subprocess.CompletedProcess(
            [sys.executable, *args], 124, out, f"timed out after {timeout:.0f} s"
        )


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    """The last line a child printed (its error sentence), stderr first."""
    lines = (result.stderr.strip() or result.stdout.strip()).splitlines()
    return lines[-1].removeprefix("error: ") if lines else f"exit code {result.returncode}"
