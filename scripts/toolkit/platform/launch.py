"""Start the platform's processes detached (own session, output to log files), wait until they
answer, and describe them as state records so a later command can check or stop them by PID."""

from __future__ import annotations

import hashlib
import os
import socket
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from contract import http, settings
from scripts.toolkit import prometheus_server
from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.platform import gitrefs
from scripts.toolkit.platform.state import PlatformState, ProcessRecord
from scripts.toolkit.processes import ManagedProcess, free_port, process_identity, stop_pid

READY_PATH = {
    "model-server": "/healthz",
    "app": http.READY_PATH,
    "router": "/-/healthz",
    "prometheus": "/-/ready",
}
# What runs an app instance unless `up --service-command` names another service.
DEFAULT_SERVICE_COMMAND = (sys.executable, "-m", "app")
# Settings the platform decides for every app instance; `--env` may not change them.
MANAGED_ENV = settings.MANAGED
APP_DEFAULTS = {
    settings.REGISTRY_RELOAD_SECONDS: "0.5",
    # The router stops sending before the old instance is told to stop; a short drain covers a
    # request that picked the old address just before the switch.
    settings.DRAIN_SECONDS: "0.5",
    settings.SHUTDOWN_GRACE_SECONDS: "15",
}
STOP_TIMEOUT = {"app": 30.0, "router": 15.0, "model-server": 15.0, "prometheus": 15.0}


@dataclass(frozen=True)
class AppSpec:
    """What an app instance runs: the code (cwd, version, SHA) and its extra settings."""

    track: str
    cwd: str
    version: str
    git_sha: str
    git_ref: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, record: ProcessRecord) -> AppSpec:
        """The spec a running instance was started with (to restart it the same way)."""
        return cls(**{f.name: getattr(record, f.name) for f in fields(cls)})


def checkout_spec(repo: Path, track: str) -> AppSpec:
    """`track` running the current checkout, versioned by its short SHA ("dev" outside git)."""
    revision = gitrefs.checkout_revision(repo)
    return AppSpec(
        track=track,
        cwd=str(repo),
        version=revision.short if revision else "dev",
        git_sha=revision.sha if revision else "unknown",
    )


@dataclass
class Started:
    """A process just started: its record, and a bounded wait for it to answer."""

    process: ManagedProcess
    record: ProcessRecord

    def wait_ready(self, timeout: float) -> ProcessRecord:
        """Wait until it answers its readiness path, then leave it running on its own; on
        failure stop it and raise a ToolkitError with the end of its log."""
        try:
            self.process.wait_http(READY_PATH[self.record.kind], timeout=timeout)
        except RuntimeError as exc:
            self.stop()
            raise ToolkitError(f"{exc}\n(log: {self.record.log})") from exc
        self.process.detach()
        return self.record

    def stop(self) -> None:
        self.process.detach()
        stop(self.record)


def port_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:`port` now."""
    with socket.socket() as sock:
        # As servers bind (uvicorn, aiohttp): connections of a stopped server lingering in
        # TIME_WAIT do not make the port busy, another listener does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def reuse_port(port: int | None) -> int:
    """`port` again when it is free (a restarted process keeps its address), else a new one."""
    return port if port and port_free(port) else free_port()


def clean_environment() -> dict[str, str]:
    """This process's environment without APP_* settings: an instance runs with exactly the
    settings its record names, whatever the caller's shell exports."""
    return {k: v for k, v in os.environ.items() if not k.startswith(settings.PREFIX)}


def _start(
    state: PlatformState,
    kind: str,
    args: list[str],
    *,
    port: int,
    env: dict[str, str] | None = None,
    spec: AppSpec | None = None,
) -> Started:
    name = spec.track if spec else kind
    log = Path(state.state_dir) / "logs" / f"{'app-' if spec else ''}{name}-{port}.log"
    cwd = Path(spec.cwd if spec else state.repo)
    env = env or clean_environment()
    process = ManagedProcess(name=name, args=args, port=port, env=env, log_path=log, cwd=cwd)
    return _started(process.start(), kind, cwd, spec)


def _started(process: ManagedProcess, kind: str, cwd: Path, spec: AppSpec | None = None) -> Started:
    """The record of a started process; an app's also holds its spec (what it runs)."""
    pid = int(process.pid or 0)
    record = ProcessRecord(
        name=process.name,
        kind=kind,
        pid=pid,
        identity=process_identity(pid) or "",
        port=process.port,
        args=process.args,
        log=str(process.log_path),
        **(asdict(spec) if spec else {"cwd": str(cwd)}),
    )
    return Started(process, record)


def start_model_server(state: PlatformState, *, port: int | None = None) -> Started:
    """The embedded OpenAI-compatible model server."""
    port = reuse_port(port)
    args = [sys.executable, "-m", "app.model_server", "--port", str(port)]
    return _start(state, "model-server", args, port=port)


def start_app(state: PlatformState, spec: AppSpec, *, port: int | None = None) -> Started:
    """An app instance of `spec` on `port` (default: a new free port), run by the platform's
    service command (default `python -m app`; a service that needs no model ignores
    APP_PROVIDER_BASE_URL)."""
    model = state.processes.get("model-server")
    if model is None:
        raise ToolkitError("the model server is not recorded; run `up` again.")
    port = port or free_port()
    env = {
        **clean_environment(),
        "APP_ENV": "development",
        "APP_PROVIDER": "openai-compatible",
        "APP_PROVIDER_BASE_URL": f"{model.url}/v1",
        settings.REGISTRY_DIR: state.registry_dir,
        settings.ADMIN_TOKEN: state.admin_token,
        settings.FEEDBACK_SECRET: hashlib.sha256(
            f"feedback:{state.admin_token}".encode()
        ).hexdigest(),
        **APP_DEFAULTS,
        **spec.extra_env,
        settings.HOST: "127.0.0.1",
        settings.PORT: str(port),
        settings.TRACK: spec.track,
        settings.VERSION: spec.version,
        settings.GIT_SHA: spec.git_sha,
        # A worktree's own `app` package, not the one installed from the main checkout.
        "PYTHONPATH": os.pathsep.join(filter(None, [spec.cwd, os.environ.get("PYTHONPATH")])),
    }
    args = list(state.service_command or DEFAULT_SERVICE_COMMAND)
    return _start(state, "app", args, port=port, env=env, spec=spec)


def start_router(state: PlatformState) -> Started:
    """The router on the platform's fixed port; it reads its table from the state file."""
    port = state.router_port
    if not port_free(port):
        raise ToolkitError(
            f"port {port} is taken by another program; stop it or choose another with "
            "`up --port` (after `down`)."
        )
    module = "scripts.toolkit.platform.router"
    args = [sys.executable, "-m", module, "--platform-dir", state.state_dir, "--port", str(port)]
    return _start(state, "router", args, port=port)


def start_prometheus(state: PlatformState, *, port: int | None = None) -> Started:
    """Real Prometheus scraping every track (see `write_targets`)."""
    port = reuse_port(port)
    workdir = Path(state.state_dir) / "prometheus"
    write_targets(state)
    process = prometheus_server.start_prometheus(
        port=port, workdir=workdir, targets_file=workdir / "targets.json"
    )
    return _started(process, "prometheus", workdir)


def write_targets(state: PlatformState) -> None:
    """Point Prometheus at every track's instance and at the router, which counts the requests
    each track failed (it rereads the file within a second)."""
    targets = {track: [f"127.0.0.1:{r.port}"] for track, r in state.apps().items()}
    targets["router"] = [f"127.0.0.1:{state.router_port}/-/metrics"]
    prometheus_server.write_targets(Path(state.state_dir) / "prometheus" / "targets.json", targets)


def stop(record: ProcessRecord) -> bool:
    """Stop a recorded process by PID (SIGTERM, bounded wait, SIGKILL); only if it is still the
    process that was started. Returns whether it was running."""
    return stop_pid(record.pid, record.identity, timeout=STOP_TIMEOUT.get(record.kind, 15.0))
