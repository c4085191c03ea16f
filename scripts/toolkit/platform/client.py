"""Talk to the router's admin API: read the routing table, change it by compare-and-swap."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

import httpx

from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.platform.routing import RoutingError, RoutingTable

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

    def close(self) -> None:
        self._http.close()

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
