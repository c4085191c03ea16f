"""The local platform's state file: what runs where, the routing table, and the locks.

One JSON file, `<state dir>/state.json`, mode 0600 (it holds the admin token), replaced
atomically on every change. Two writers share it: the CLI/library (processes, worktrees,
intents) and the router (the `routes` it serves, so a restarted router keeps its weights).
Each writer changes only its own fields on a fresh read under `.state.lock`, so neither
overwrites the other. Long operations (deploy, promote, ...) also hold `.operation.lock`, so two
of them never interleave.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contract.files import atomic_write
from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.processes import pid_running

STATE_FILE = "state.json"
SCHEMA_VERSION = 1


def now() -> str:
    """UTC time stamp for the state file."""
    return datetime.now(UTC).isoformat(timespec="seconds")


# What an app instance runs: its code and its extra settings.
APP_SPEC = ("track", "cwd", "version", "git_sha", "git_ref", "extra_env")


@dataclass
class ProcessRecord:
    """One process of the platform: what it runs and, once started, its PID: enough to check
    it, restart it the same way and stop it by PID."""

    name: str  # model-server, router, prometheus, or the app's track
    kind: str  # model-server | app | router | prometheus
    pid: int = 0  # 0: not started
    identity: str = ""  # start time of the PID: a reused PID is never taken for this process
    port: int = 0
    args: list[str] = field(default_factory=list)
    cwd: str = ""
    log: str = ""
    started_at: str = field(default_factory=now)
    track: str | None = None
    version: str | None = None
    git_sha: str | None = None
    git_ref: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    def spec(self) -> dict[str, Any]:
        """What this app instance runs (`APP_SPEC`): the same spec starts the same instance."""
        return {name: getattr(self, name) for name in APP_SPEC}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def running(self) -> bool:
        """Whether this very process still runs."""
        return pid_running(self.pid, self.identity)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (with the URL, for readers of the file)."""
        return {**asdict(self), "url": self.url}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProcessRecord:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class PlatformState:
    """Everything `state.json` holds."""

    state_dir: str
    repo: str
    admin_token: str
    router_port: int
    registry_dir: str
    prometheus: str = "auto"  # what `up` was asked for: auto | on | off
    service_command: list[str] | None = None  # what runs an app instance (None: python -m app)
    processes: dict[str, ProcessRecord] = field(default_factory=dict)
    # Started but not serving (a replacement not yet routed, or an old instance not yet
    # stopped): whatever runs the next operation finds here and the router does not route to
    # is stopped, so an interrupted operation never leaks a process.
    retiring: list[ProcessRecord] = field(default_factory=list)
    routes: dict[str, Any] | None = None  # owned by the router once it runs
    intent: dict[str, Any] | None = None  # a multi-step operation in progress (promote)
    switched_from: str | None = None  # the track a blue-green switch took traffic from
    created_at: str = field(default_factory=now)
    schema_version: int = SCHEMA_VERSION

    @property
    def router_url(self) -> str:
        """Where clients send requests."""
        return f"http://127.0.0.1:{self.router_port}"

    @property
    def prometheus_url(self) -> str | None:
        """Prometheus base URL when the platform runs one."""
        record = self.processes.get("prometheus")
        return record.url if record else None

    def apps(self) -> dict[str, ProcessRecord]:
        """The serving app instance of each track."""
        return {n: r for n, r in self.processes.items() if r.kind == "app"}

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "processes": {n: r.to_dict() for n, r in self.processes.items()},
            "retiring": [r.to_dict() for r in self.retiring],
            "router_url": self.router_url,
            "prometheus_url": self.prometheus_url,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlatformState:
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["processes"] = {
            n: ProcessRecord.from_dict(r) for n, r in data.get("processes", {}).items()
        }
        values["retiring"] = [ProcessRecord.from_dict(r) for r in data.get("retiring", [])]
        return cls(**values)


class StateStore:
    """Reads and writes `state.json` of one state folder, under its locks."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir.resolve()
        self.path = self.dir / STATE_FILE

    def exists(self) -> bool:
        return self.path.is_file()

    def read(self) -> PlatformState:
        """The recorded state; a ToolkitError when there is none."""
        state = self.try_read()
        if state is None:
            raise ToolkitError(
                f"no local platform runs from {self.dir}; start it with "
                "`python -m scripts.local_platform up`."
            )
        return state

    def try_read(self) -> PlatformState | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            return PlatformState.from_dict(json.loads(text))
        except (ValueError, TypeError) as exc:
            raise ToolkitError(
                f"{self.path} is not a valid platform state ({exc}); stop the processes it "
                "lists by hand and delete it."
            ) from exc

    def write(self, state: PlatformState) -> None:
        """Replace the file atomically, readable by its owner only."""
        with self._locked(".state.lock"):
            atomic_write(self.path, json.dumps(state.to_dict(), indent=2), mode=0o600)

    @contextlib.contextmanager
    def edit(self) -> Iterator[PlatformState]:
        """Read, let the caller change, and write back, all under the state lock (hold it
        briefly: the router waits for it to save its routes)."""
        with self._locked(".state.lock"):
            state = self.read()
            yield state
            atomic_write(self.path, json.dumps(state.to_dict(), indent=2), mode=0o600)

    def remove(self) -> None:
        """Delete the state file (the platform is down)."""
        with self._locked(".state.lock"):
            self.path.unlink(missing_ok=True)

    def operation(self, timeout: float = 120.0) -> contextlib.AbstractContextManager[None]:
        """Hold the operation lock: one deploy, promote, up or down at a time."""
        return self._locked(".operation.lock", timeout=timeout)

    @contextlib.contextmanager
    def _locked(self, name: str, *, timeout: float = 10.0) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        deadline = time.monotonic() + timeout
        with (self.dir / name).open("a") as handle:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise ToolkitError(
                            f"another local platform operation holds {self.dir / name} for over "
                            f"{timeout:.0f} s; wait for it to finish and try again."
                        ) from None
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def track_urls(state_dir: Path) -> dict[str, list[str]]:
    """Base URLs of the running app instance of each track (empty when no platform runs)."""
    state = StateStore(state_dir).try_read()
    if state is None:
        return {}
    return {track: [r.url] for track, r in state.apps().items() if r.running()}


def registry_dir(state_dir: Path) -> Path | None:
    """The registry copy a recorded platform serves, if any."""
    state = StateStore(state_dir).try_read()
    if state is None:
        return None
    path = Path(state.registry_dir)
    return path if path.is_dir() else None
