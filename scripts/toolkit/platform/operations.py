"""Steps every platform operation shares: zero-downtime replacement of a track's instance,
taking a track out of the routing table, and reconciling after an interrupted operation.

The router's table says what serves (`RouterClient` reads it and changes it by compare-and-swap);
the state file says what runs. Each step changes one of them at a time, in an order that keeps
every request served, and records a started process before waiting for it, so a re-run after
an interruption at any point converges.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

import httpx

from contract.tracks import Track
from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.platform import launch
from scripts.toolkit.platform.routing import RoutingError, RoutingTable
from scripts.toolkit.platform.state import PlatformState, ProcessRecord, StateStore

CONFLICT_RETRIES = 5


class RouterClient:
    """The admin API of the router at `url`."""

    def __init__(self, url: str, admin_token: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        # One client for all calls, built without loading the CA bundle (30+ ms, more than a
        # rollback's GET and PUT): the router speaks plain HTTP on 127.0.0.1, and a TLS context
        # that trusts no CA refuses any HTTPS peer instead of trusting it.
        self._http = httpx.Client(
            headers={"X-Admin-Token": admin_token},
            timeout=timeout,
            verify=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT),
        )

    def routes(self) -> RoutingTable:
        return self._table(self._call("GET", "/-/routes"))

    def update(self, change: Callable[[RoutingTable], RoutingTable]) -> RoutingTable:
        """Apply `change` to the serving table and PUT the result, conditional on the revision
        it was computed from; re-read and re-apply when another writer came first."""
        for _ in range(CONFLICT_RETRIES):
            current = self.routes()
            try:
                wanted = change(current)
            except RoutingError as exc:
                raise ToolkitError(f"that routing change is not valid: {exc}") from exc
            if wanted.backends == current.backends and wanted.weights == current.weights:
                return current
            response = self._call(
                "PUT", "/-/routes", {**wanted.to_dict(), "revision": current.revision}
            )
            if response.status_code != 409:
                return self._table(response)
        raise ToolkitError(
            f"the routing table kept changing under {CONFLICT_RETRIES} attempts; "
            "another writer is busy, try again."
        )

    def healthy(self) -> bool:
        """Whether the router answers its health check."""
        try:
            return self._http.get(self.url + "/-/healthz", timeout=2.0).status_code == 200
        except httpx.TransportError:
            return False

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        try:
            response = self._http.request(method, self.url + path, json=body)
        except httpx.TransportError as exc:
            raise ToolkitError(
                f"the router at {self.url} does not answer ({exc.__class__.__name__}); "
                "start the platform with `python -m scripts.local_platform up`."
            ) from exc
        if response.status_code in (400, 403, 500):
            raise ToolkitError(f"the router refused the change: {_detail(response)}")
        return response

    @staticmethod
    def _table(response: httpx.Response) -> RoutingTable:
        try:
            return RoutingTable.from_dict(response.json())
        except (ValueError, RoutingError) as exc:
            raise ToolkitError(f"the router sent an unexpected answer: {exc}") from exc


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json()["detail"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"


def client_for(state: PlatformState) -> RouterClient:
    return RouterClient(state.router_url, state.admin_token)


def require_up(store: StateStore) -> tuple[PlatformState, RouterClient]:
    """The state and router client of a running platform; a ToolkitError otherwise."""
    state = store.read()
    client = client_for(state)
    router = state.processes.get("router")
    if router is None or not router.running() or not client.healthy():
        raise ToolkitError(
            "the platform's router is not running; run `python -m scripts.local_platform up` "
            "(it restarts what died)."
        )
    return state, client


def same(a: ProcessRecord, b: ProcessRecord) -> bool:
    return a.pid == b.pid and a.identity == b.identity


def forget(store: StateStore, record: ProcessRecord) -> None:
    """Drop `record` wherever the state lists it."""
    with store.edit() as state:
        state.retiring = [r for r in state.retiring if not same(r, record)]
        current = state.processes.get(record.name)
        if current is not None and same(current, record):
            del state.processes[record.name]


def with_backend(table: RoutingTable, track: str, url: str) -> RoutingTable:
    """`table` with `track` served at `url`; a track new to the table starts at weight 0
    (all of it when it is the only one)."""
    weights = dict(table.weights) if table.weights else {track: 100.0}
    return table.changed(backends={**table.backends, track: url}, weights=weights)


def without_track(table: RoutingTable, track: str) -> RoutingTable:
    """`table` without `track`; its weight goes to stable in the same change."""
    if track not in table.backends:
        return table
    backends = {t: u for t, u in table.backends.items() if t != track}
    weights = {t: w for t, w in table.weights.items() if t != track}
    weight = table.weights.get(track, 0.0)
    if weight > 0:
        if track == Track.STABLE or Track.STABLE not in backends:
            raise ToolkitError(
                f"track '{track}' serves {weight:g}% of traffic; switch traffic to another "
                "track first."
            )
        weights[Track.STABLE] += weight
    return table.changed(backends=backends, weights=weights)


def replace_track(
    store: StateStore, client: RouterClient, spec: ProcessRecord, *, timeout: float
) -> ProcessRecord:
    """Start `spec` as its track's instance without dropping a request: new process on a new
    port, wait until ready, point the router at it, then stop the old one (it drains)."""
    new = launch.start_app(store.read(), spec)
    with store.edit() as state:  # recorded before the wait: an interruption cannot leak it
        state.retiring.append(new)
    try:
        launch.wait_ready(new, timeout)
    except ToolkitError:
        forget(store, new)
        raise
    client.update(lambda table: with_backend(table, str(new.track), new.url))
    reconcile(store, client)  # the new instance becomes the track's, the old one stops
    return new


def reconcile(store: StateStore, client: RouterClient) -> list[str]:
    """Bring the recorded instances in line with the router's table (call after each change
    of it): an instance it serves becomes its track's record, and one it no longer routes
    to is stopped (it drains) and forgotten. So an interrupted operation is finished by the
    next one. Returns what it stopped."""
    backends = client.routes().backends
    with store.edit() as state:
        for record in list(state.retiring):
            if backends.get(str(record.track)) == record.url:
                state.retiring.remove(record)
                old = state.processes.get(record.name)
                state.processes[record.name] = record
                if old is not None:
                    state.retiring.append(old)
        instances = [*state.retiring, *state.apps().values()]
        leftovers = [r for r in instances if r.url not in backends.values()]
    for record in leftovers:
        launch.stop(record)
        forget(store, record)
    refresh_targets(store)
    return [r.name for r in leftovers]


def refresh_targets(store: StateStore) -> None:
    """Keep Prometheus's target list equal to the running tracks."""
    state = store.read()
    if "prometheus" in state.processes:
        launch.write_targets(state)
