"""The router's admin API under `/-/`: health, metrics, and the routing table (token needed).

`GET /-/healthz` and `GET /-/metrics` are open; `GET /-/routes` and `PUT /-/routes` need the
`X-Admin-Token` header. The accepted table is saved (`persist`) before it serves, so a
restarted router keeps its weights.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client import generate_latest as render_metrics

from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.platform.router_metrics import RouterMetrics
from scripts.toolkit.platform.routing import RoutingError, RoutingTable

log = logging.getLogger("router")


class AdminApi:
    """Owns the serving `table`, which it replaces whole, never changes in place."""

    def __init__(
        self,
        *,
        table: RoutingTable,
        admin_token: str,
        metrics: RouterMetrics,
        persist: Callable[[RoutingTable], None] | None = None,
    ) -> None:
        self.table = table
        self.admin_token = admin_token
        self.metrics = metrics
        self.persist = persist
        self.metrics.export(table)
        self._change_lock = asyncio.Lock()

    async def healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "revision": self.table.revision})

    async def metrics_page(self, _: web.Request) -> web.Response:
        return web.Response(
            body=render_metrics(self.metrics.registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )

    async def get_routes(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _error(403, "A valid X-Admin-Token header is required.")
        return web.json_response(self.table.to_dict())

    async def put_routes(self, request: web.Request) -> web.Response:
        """Replace the routing table; `revision` in the body, when given, must be the serving
        one (compare-and-swap: 409 if someone changed it meanwhile)."""
        try:
            if not self._authorized(request):
                raise Refused(403, "A valid X-Admin-Token header is required.")
            data, proposed = _proposed_table(await request.read())
            async with self._change_lock:
                table = await self._accept(proposed, data.get("revision"))
        except Refused as refusal:
            return _error(refusal.status, refusal.detail)
        return web.json_response(table.to_dict())

    async def _accept(self, proposed: RoutingTable, expected: object) -> RoutingTable:
        current = self.table
        if expected is not None and expected != current.revision:
            raise Refused(
                409,
                f"The routing table is at revision {current.revision}, not {expected}; "
                "read it again.",
            )
        if proposed.backends == current.backends and proposed.weights == current.weights:
            return current
        table = RoutingTable.build(proposed.backends, proposed.weights, current.revision + 1)
        if self.persist is not None:
            try:
                await asyncio.to_thread(self.persist, table)
            except (OSError, ToolkitError) as exc:
                log.exception("could not save the routing table")
                raise Refused(
                    500, "The routing table could not be saved; see the router log."
                ) from exc
        self.table = table  # the one atomic switch
        self.metrics.export(table)
        log.info("routes revision %d: %s", table.revision, table.to_dict())
        return table

    async def unknown(self, _: web.Request) -> web.Response:
        return _error(404, "Unknown admin endpoint; see GET /-/routes.")

    def _authorized(self, request: web.Request) -> bool:
        token = request.headers.get("X-Admin-Token", "")
        return bool(self.admin_token) and hmac.compare_digest(
            token.encode(), self.admin_token.encode()
        )


class Refused(Exception):
    """An admin request refused with `status` and a one-sentence `detail`."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _proposed_table(body: bytes) -> tuple[dict[str, Any], RoutingTable]:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise Refused(400, "The body is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise Refused(400, "The body must be a JSON object.")
    try:
        return data, RoutingTable.from_dict(data)
    except RoutingError as exc:
        raise Refused(400, str(exc)) from exc


def _error(status: int, detail: str) -> web.Response:
    return web.json_response({"detail": detail}, status=status)
