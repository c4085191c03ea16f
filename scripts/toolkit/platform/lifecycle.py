"""Bring the local platform up, report on it, take it down; each is idempotent."""

from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from contract.files import REPO_ROOT
from contract.tracks import TRACKS, Track
from scripts.toolkit import prometheus_server
from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.platform import gitrefs, launch, operations
from scripts.toolkit.platform.routing import RoutingTable
from scripts.toolkit.platform.state import PlatformState, ProcessRecord, StateStore

DEFAULT_PORT = 8000
PROMETHEUS_MODES = ("auto", "on", "off")
STOP_ORDER = ("router", *TRACKS, "model-server", "prometheus")
_Launch = Callable[[ProcessRecord], ProcessRecord]  # records a process `up` started


@dataclass
class UpResult:
    """What `up` found and did."""

    state: PlatformState
    started: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (no admin token)."""
        return {
            "router_url": self.state.router_url,
            "prometheus_url": self.state.prometheus_url,
            "metric_source": "prometheus" if self.state.prometheus_url else "scrape",
            "registry_dir": self.state.registry_dir,
            "state_file": str(Path(self.state.state_dir) / "state.json"),
            "started": self.started,
            "kept": self.kept,
            "warnings": self.warnings,
            "processes": {n: r.to_dict() for n, r in self.state.processes.items()},
        }


def up(
    state_dir: Path,
    *,
    port: int | None = None,
    prometheus_mode: str = "auto",
    service_command: Sequence[str] | None = None,
    timeout: float = 60.0,
) -> UpResult:
    """Start what is not running (model server, stable, router, Prometheus) and wait until
    every part answers; a second call starts nothing and a dead process is restarted. On
    failure, what this call started is stopped again. `port` (default 8000),
    `prometheus_mode` and `service_command` (what runs an app instance, default
    `python -m app`) apply when the platform is created; `down` first to change them."""
    if prometheus_mode not in PROMETHEUS_MODES:
        raise ToolkitError(f"--prometheus must be one of {', '.join(PROMETHEUS_MODES)}.")
    store = StateStore(state_dir)
    with store.operation():
        fresh = not store.exists()
        if fresh:
            _create(
                store,
                port=port or DEFAULT_PORT,
                prometheus_mode=prometheus_mode,
                service_command=list(service_command) if service_command else None,
            )
        started: list[ProcessRecord] = []
        try:
            result = _bring_up(store, started, timeout=timeout)
        except BaseException:  # also Ctrl-C: stop what this call started, then re-raise
            # Their records stay: a retry restarts the same specs (it replaced only dead ones).
            for record in reversed(started):
                launch.stop(record)
            if fresh:
                shutil.rmtree(store.dir / "registry", ignore_errors=True)
                store.remove()
            raise
    if port is not None and port != result.state.router_port:
        result.warnings.append(
            f"The platform already runs on port {result.state.router_port}; `down` first to "
            f"move it to {port}."
        )
    if service_command and list(service_command) != result.state.service_command:
        result.warnings.append("The platform already runs another service command; `down` first.")
    return result


def _create(
    store: StateStore, *, port: int, prometheus_mode: str, service_command: list[str] | None
) -> None:
    registry = store.dir / "registry"
    if registry.exists():  # left by an `up` that was killed before it recorded anything
        shutil.rmtree(registry)
    shutil.copytree(REPO_ROOT / "registry", registry)
    store.write(
        PlatformState(
            state_dir=str(store.dir),
            repo=str(REPO_ROOT),
            admin_token=secrets.token_urlsafe(32),
            router_port=port,
            registry_dir=str(registry),
            prometheus=prometheus_mode,
            service_command=service_command,
        )
    )


def _bring_up(store: StateStore, started: list[ProcessRecord], *, timeout: float) -> UpResult:
    result = UpResult(state=store.read())

    def launch_recorded(record: ProcessRecord) -> ProcessRecord:
        started.append(record)
        with store.edit() as editing:
            editing.processes[record.name] = record
        result.started.append(record.name)
        return record

    state = store.read()
    model = state.processes.get("model-server")
    model_moved = False
    if model is not None and model.running():
        result.kept.append(model.name)
    else:
        item = launch_recorded(launch.start_model_server(state, port=model.port if model else None))
        model_moved = model is not None and model.port != item.port

    state = store.read()
    apps: dict[str, ProcessRecord | None] = {Track.STABLE: None, **state.apps()}
    for track, record in apps.items():
        if record is not None and record.running() and not model_moved:
            result.kept.append(track)
            continue
        if record is not None:
            launch.stop(record)  # only when the model server moved: it points at the old one
        spec = record or launch.checkout_spec(Path(state.repo), Track.STABLE)
        port = launch.reuse_port(record.port if record else None)
        launch_recorded(launch.start_app(state, spec, port=port))
    deadline = time.monotonic() + timeout
    for item in list(started):  # started together, waited for in turn within one deadline
        launch.wait_ready(item, max(deadline - time.monotonic(), 1.0))

    _start_router(store, result, launch_recorded, timeout)
    _start_prometheus(store, result, launch_recorded, timeout)
    operations.reconcile(store, operations.client_for(store.read()))
    result.state = store.read()
    return result


def _start_router(store: StateStore, result: UpResult, start: _Launch, timeout: float) -> None:
    state = store.read()
    backends = {track: r.url for track, r in state.apps().items()}
    router = state.processes.get("router")
    if router is not None and router.running():
        result.kept.append("router")
        client = operations.client_for(state)
        client.update(lambda t: t.changed(backends={**t.backends, **backends}))
        return
    with store.edit() as editing:  # the table the router starts with (kept across restarts)
        table = (
            RoutingTable.from_dict(editing.routes)
            if editing.routes
            else RoutingTable.build(backends, {Track.STABLE: 100.0})
        )
        editing.routes = table.changed(backends={**table.backends, **backends}).to_dict()
    launch.wait_ready(start(launch.start_router(state)), timeout)


def _start_prometheus(store: StateStore, result: UpResult, start: _Launch, timeout: float) -> None:
    state = store.read()
    record = state.processes.get("prometheus")
    if state.prometheus == "off":
        return
    if record is not None and record.running():
        result.kept.append("prometheus")
        return
    if prometheus_server.prometheus_binary() is None:
        if state.prometheus == "on":
            raise ToolkitError("prometheus is not installed; apt-get install prometheus.")
        result.warnings.append("Prometheus is not installed: use the `scrape` metric source.")
        return
    item = start(launch.start_prometheus(state, port=record.port if record else None))
    try:
        launch.wait_ready(item, timeout)
    except ToolkitError as exc:
        if state.prometheus == "on":
            raise
        operations.forget(store, item)
        result.started.remove("prometheus")
        result.warnings.append(f"Prometheus did not start, use the `scrape` source: {exc}")


@dataclass
class DownResult:
    """What `down` stopped and removed."""

    stopped: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    was_up: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def down(state_dir: Path) -> DownResult:
    """Stop every recorded process by PID (router first, then apps, model server,
    Prometheus), remove the worktrees, the registry copy and the state file. Logs stay."""
    store = StateStore(state_dir)
    if not store.exists():
        return DownResult(was_up=False)
    result = DownResult()
    with store.operation():
        state = store.try_read()
        if state is None:  # another `down` finished while this one waited
            return DownResult(was_up=False)
        order = {name: i for i, name in enumerate(STOP_ORDER)}
        records = sorted(state.processes.values(), key=lambda r: order.get(r.name, 1))
        for record in [*records[:1], *state.retiring, *records[1:]]:
            if launch.stop(record):
                result.stopped.append(record.name)
        for path in _worktrees(store):
            gitrefs.remove_worktree(path, repo=Path(state.repo))
            result.removed.append(str(path))
        if (store.dir / "worktrees").is_dir() and not _worktrees(store):
            (store.dir / "worktrees").rmdir()
        # Old samples would mix into the next run's queries under the same track labels.
        shutil.rmtree(store.dir / "prometheus" / "data", ignore_errors=True)
        registry = Path(state.registry_dir)
        if registry.is_relative_to(store.dir):  # only the copy `up` made
            shutil.rmtree(registry, ignore_errors=True)
            result.removed.append(str(registry))
        store.remove()
    return result


def _worktrees(store: StateStore) -> list[Path]:
    """The checkouts of `deploy --ref` (each in its own folder under `worktrees/`)."""
    folder = store.dir / "worktrees"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def probe(url: str, *, timeout: float = 3.0) -> str:
    """`ready` (200), `unready` (an answer, not 200) or `down` (no answer)."""
    try:
        code = httpx.get(url, timeout=timeout).status_code
    except httpx.TransportError:
        return "down"
    return "ready" if code == 200 else "unready"


def status(state_dir: Path) -> dict[str, Any]:
    """The recorded state, each process's health, the router's weights and the metric
    source; `status` is `up`, `degraded` (something is not ready) or `down`."""
    store = StateStore(state_dir)
    state = store.try_read()
    if state is None:
        return {"status": "down", "state_dir": str(store.dir)}
    processes = {}
    for name, record in state.processes.items():
        running = record.running()
        health = probe(record.url + launch.READY_PATH[record.kind]) if running else "down"
        processes[name] = {**record.to_dict(), "running": running, "health": health}
    router_ok = processes.get("router", {}).get("health") == "ready"
    routes = (
        operations.client_for(state).routes().to_dict() if router_ok else {**(state.routes or {})}
    )
    prometheus_ok = processes.get("prometheus", {}).get("health") == "ready"
    healthy = all(p["health"] == "ready" for p in processes.values()) and router_ok
    return {
        "status": "up" if healthy else "degraded",
        "state_dir": str(store.dir),
        "router_url": state.router_url,
        "routes": routes,
        "routes_source": "router" if router_ok else "state file",
        "metric_source": "prometheus" if prometheus_ok else "scrape",
        "prometheus_url": state.prometheus_url if prometheus_ok else None,
        "registry_dir": state.registry_dir,
        "worktrees": [str(path) for path in _worktrees(store)],
        "retiring": [r.name for r in state.retiring],
        "intent": state.intent,
        "processes": processes,
    }
