"""Start the project's servers as child processes, wait for them over HTTP, stop them by PID."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess  # nosec B404  # runs this project's own modules, never a shell
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

Popen = subprocess.Popen[bytes]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _popen(args: list[str], *, env: dict[str, str], cwd: Path | None, log_path: Path) -> Popen:
    """Start `args` in its own session, its output appended to `log_path` (the child keeps its
    own copy of the log file, so this process closes its copy at once)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(  # noqa: S603  # nosec B603  # fixed argv, no shell
            args, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def start_detached(args: list[str], *, env: dict[str, str], cwd: Path, log_path: Path) -> int:
    """Start `args` like `ManagedProcess.start` and leave it running on its own; its PID, to
    wait for with `wait_http` and stop with `stop_pid`."""
    popen = _popen(args, env=env, cwd=cwd, log_path=log_path)
    _DETACHED[popen.pid] = popen  # reaped by stop_pid, never a zombie
    return popen.pid


def wait_http(
    url: str, path: str, *, running: Callable[[], bool], name: str, log_path: Path, timeout: float
) -> None:
    """Wait until `url``path` answers 200 while `running()`; raise RuntimeError with the log
    tail otherwise."""
    import httpx  # noqa: PLC0415  # here: the router imports this module and starts faster

    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if not running():
                raise RuntimeError(f"{name} exited early:\n{log_tail(log_path)}")
            try:
                if client.get(url + path).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise RuntimeError(f"{name} did not answer {path} in {timeout:.0f} s:\n{log_tail(log_path)}")


def log_tail(path: Path, lines: int = 30) -> str:
    """The last `lines` lines of a process's output."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class ManagedProcess:
    """A child process serving HTTP on 127.0.0.1:`port`, with its output in `log_path`."""

    name: str
    args: list[str]
    port: int
    env: dict[str, str]
    log_path: Path
    cwd: Path | None = None
    process: Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> ManagedProcess:
        """Start the child (its output goes to `log_path`)."""
        self.process = _popen(self.args, env=self.env, cwd=self.cwd, log_path=self.log_path)
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_http(self, path: str = "/healthz", *, timeout: float = 30.0) -> None:
        """Wait until `path` answers 200; raise RuntimeError with the log tail otherwise."""
        wait_http(
            self.url,
            path,
            running=self.running,
            name=self.name,
            log_path=self.log_path,
            timeout=timeout,
        )

    def signal(self, sig: int) -> None:
        """Send `sig` to the child only (never to processes it did not start)."""
        if self.process is not None and self.running():
            self.process.send_signal(sig)

    def stop(self, *, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait up to `timeout`, then SIGKILL; returns the exit code."""
        if self.process is None:
            return None
        if self.running():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode

    def log_tail(self, lines: int = 30) -> str:
        """The last `lines` lines of the child's output."""
        return log_tail(self.log_path, lines)


# Children this process detached: kept so they can be reaped (no zombie, no ResourceWarning).
_DETACHED: dict[int, Popen] = {}


def process_identity(pid: int) -> str | None:
    """What names this incarnation of `pid` (its start time on Linux), or None when no live
    process has it (a zombie counts as gone). Recorded at start and compared before a signal,
    so a PID reused by another program is never signalled."""
    popen = _DETACHED.get(pid)
    if popen is not None and popen.poll() is not None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError:  # no procfs (macOS): existence is all we can tell
        return _exists(pid)
    fields = stat.rpartition(")")[2].split()  # the command name may hold spaces and parentheses
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]  # field 22 of stat: start time in clock ticks since boot


def _exists(pid: int) -> str | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # exists, owned by someone else
        pass
    return ""


def pid_running(pid: int, identity: str) -> bool:
    """Whether the process started as (`pid`, `identity`) still runs."""
    current = process_identity(pid)
    return current is not None and (current == identity or "" in (current, identity))


def stop_pid(pid: int, identity: str, *, timeout: float = 15.0) -> bool:
    """SIGTERM the process (`pid`, `identity`), wait up to `timeout` s, then SIGKILL.

    Does nothing when that process is gone or the PID now names another process; returns
    whether it had to stop it."""
    if not pid_running(pid, identity):
        _reap(pid)
        return False
    with contextlib.suppress(ProcessLookupError):  # it may exit on its own meanwhile
        os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, identity, timeout) and pid_running(pid, identity):
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, identity, 5.0)
    _reap(pid)
    return True


def _wait_gone(pid: int, identity: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not pid_running(pid, identity):
            return True
        time.sleep(0.02)
    return not pid_running(pid, identity)


def _reap(pid: int) -> None:
    # Only children detached here: a caller holding its own Popen keeps its exit status.
    popen = _DETACHED.get(pid)
    if popen is not None and popen.poll() is not None:
        del _DETACHED[pid]


def python_module(
    name: str,
    module: str,
    *,
    port: int,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    log_dir: Path,
    cwd: Path | None = None,
) -> ManagedProcess:
    """A ManagedProcess running `python -m module args...` with `env` added to os.environ."""
    return ManagedProcess(
        name=name,
        args=[sys.executable, "-m", module, *args],
        port=port,
        env={**os.environ, **(env or {})},
        log_path=log_dir / f"{name}.log",
        cwd=cwd,
    )
