"""Start the platform's processes detached (own session, output to log files), wait until they
answer, and describe them as state records so a later command can check or stop them by PID."""

from __future__ import annotations

import hashlib
import os
import socket
import sys
from dataclasses import replace
from pathlib import Path

from contract import http, settings
from scripts.toolkit import prometheus_server
from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.platform import gitrefs
from scripts.toolkit.platform.state import PlatformState, ProcessRecord, now
from scripts.toolkit.processes import (
    free_port,
    process_identity,
    start_detached,
    stop_pid,
    wait_http,
)

READY_PATH = {
    "model-server": "/healthz",
    "app": http.READY_PATH,
    "router": "/-/healthz",
    "prometheus": "/-/ready",
}
# What runs an app instance unless `up --service-command` names another service.
DEFAULT_SERVICE_COMMAND = (sys.executable, "-m", "app")
DATABASE_FILE = "service.db"  # in the state folder
# Settings the platform decides for every app instance; `--env` may not change them.
MANAGED_ENV = settings.MANAGED
APP_DEFAULTS = {
    settings.REGISTRY_RELOAD_SECONDS: "0.5",
    # The router stops sending before the old instance is told to stop; a short drain covers a
    # request that picked the old address just before the switch.
    settings.DRAIN_SECONDS: "0.5",
    settings.SHUTDOWN_GRACE_SECONDS: "15",
}


def checkout_spec(repo: Path, track: str) -> ProcessRecord:
    """`track` running the current checkout, versioned by its short SHA ("dev" outside git)."""
    revision = gitrefs.checkout_revision(repo)
    return ProcessRecord(
        track,
        "app",
        track=track,
        cwd=str(repo),
        version=revision.short if revision else "dev",
        git_sha=revision.sha if revision else "unknown",
    )


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


def start(state: PlatformState, record: ProcessRecord, env: dict[str, str]) -> ProcessRecord:
    """The one way every process starts: the record's `args` detached (own session, output in
    its log), from its folder (default: the repository); the record of the started process, to
    wait for with `wait_ready` and stop with `stop`."""
    prefix = "app-" if record.kind == "app" else ""
    log = Path(state.state_dir) / "logs" / f"{prefix}{record.name}-{record.port}.log"
    cwd = record.cwd or state.repo
    pid = start_detached(record.args, env=env, cwd=Path(cwd), log_path=log)
    identity = process_identity(pid) or ""
    return replace(record, pid=pid, identity=identity, cwd=cwd, log=str(log), started_at=now())


def wait_ready(record: ProcessRecord, timeout: float) -> ProcessRecord:
    """Wait until `record` answers its readiness path, then leave it running on its own; on
    failure stop it and raise a ToolkitError with the end of its log."""
    try:
        wait_http(
            record.url,
            READY_PATH[record.kind],
            running=record.running,
            name=record.name,
            log_path=Path(record.log),
            timeout=timeout,
        )
    except RuntimeError as exc:
        stop(record)
        raise ToolkitError(f"{exc}\n(log: {record.log})") from exc
    return record


def start_model_server(state: PlatformState, *, port: int | None = None) -> ProcessRecord:
    """The embedded OpenAI-compatible model server."""
    port = reuse_port(port)
    args = [sys.executable, "-m", "app.model_server", "--port", str(port)]
    record = ProcessRecord("model-server", "model-server", port=port, args=args)
    return start(state, record, clean_environment())


def start_app(
    state: PlatformState, spec: ProcessRecord, *, port: int | None = None
) -> ProcessRecord:
    """An app instance of `spec` (its `APP_SPEC` fields) on `port` (default: a new free port),
    run by the platform's service command (default `python -m app`; a service that needs no
    model ignores APP_PROVIDER_BASE_URL)."""
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
        # One database for every track and every instance: feedback outlives restarts and
        # deploys (`--env APP_DATABASE_URL=postgresql://...` names another).
        settings.DATABASE_URL: f"sqlite:///{Path(state.state_dir).resolve() / DATABASE_FILE}",
        **spec.extra_env,
        settings.HOST: "127.0.0.1",
        settings.PORT: str(port),
        settings.TRACK: str(spec.track),
        settings.VERSION: str(spec.version),
        settings.GIT_SHA: str(spec.git_sha),
        # A worktree's own `app` package, not the one installed from the main checkout.
        "PYTHONPATH": os.pathsep.join(filter(None, [spec.cwd, os.environ.get("PYTHONPATH")])),
    }
    args = list(state.service_command or DEFAULT_SERVICE_COMMAND)
    return start(state, replace(spec, port=port, args=args), env)


def start_router(state: PlatformState) -> ProcessRecord:
    """The router on the platform's fixed port; it reads its table from the state file."""
    port = state.router_port
    if not port_free(port):
        raise ToolkitError(
            f"port {port} is taken by another program; stop it or choose another with "
            "`up --port` (after `down`)."
        )
    module = "scripts.toolkit.platform.router"
    args = [sys.executable, "-m", module, "--platform-dir", state.state_dir, "--port", str(port)]
    return start(
        state, ProcessRecord("router", "router", port=port, args=args), clean_environment()
    )


def start_prometheus(state: PlatformState, *, port: int | None = None) -> ProcessRecord:
    """Real Prometheus scraping every track (see `write_targets`)."""
    port = reuse_port(port)
    workdir = Path(state.state_dir) / "prometheus"
    write_targets(state)
    targets = workdir / "targets.json"
    args = prometheus_server.command(port=port, workdir=workdir, targets_file=targets)
    record = ProcessRecord("prometheus", "prometheus", port=port, args=args, cwd=str(workdir))
    return start(state, record, dict(os.environ))


def write_targets(state: PlatformState) -> None:
    """Point Prometheus at every track's instance and at the router, which counts the requests
    each track failed (it rereads the file within a second)."""
    targets = {track: [f"127.0.0.1:{r.port}"] for track, r in state.apps().items()}
    targets["router"] = [f"127.0.0.1:{state.router_port}/-/metrics"]
    prometheus_server.write_targets(Path(state.state_dir) / "prometheus" / "targets.json", targets)


def stop(record: ProcessRecord) -> bool:
    """Stop a recorded process by PID (SIGTERM, bounded wait, SIGKILL); only if it is still the
    process that was started. Returns whether it was running."""
    return stop_pid(record.pid, record.identity, timeout=30.0 if record.kind == "app" else 15.0)
