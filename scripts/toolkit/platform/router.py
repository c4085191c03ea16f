"""`python -m scripts.toolkit.platform.router`: the local platform's weighted, sticky proxy.

It stands in for a cluster's traffic splitter. Every request is assigned to a track by its
unit id (see `routing.py`) and forwarded (method, path, query, headers minus hop-by-hop, body)
to that track's backend; the response carries `X-Routed-Track`. The routing table is one
immutable object swapped whole by `PUT /-/routes`, so a change never drops a request: those
in flight finish where they were sent, new ones see the new table.

A backend that refuses the connection (a dead process) never saw the request, so it is sent
once to stable instead and counted as a fallback. A request that reached a backend is never
sent again (aiohttp itself retries only idempotent methods on a stale keep-alive connection,
as RFC 9112 allows).

Admin API under `/-/`: `GET /-/healthz` and `GET /-/metrics` are open; `GET /-/routes` and
`PUT /-/routes` need the `X-Admin-Token` header. The accepted table is saved to the state file
before it serves, so a restarted router keeps its weights.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import logging
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge
from prometheus_client import generate_latest as render_metrics

from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.platform.routing import TRACKS, RoutingError, RoutingTable, unit_id
from scripts.toolkit.platform.state import StateStore

log = logging.getLogger("router")

# Hop-by-hop headers (RFC 9110 7.6.1) are the proxy's own business, never forwarded; the
# length and host are set again for the next hop.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
# Below uvicorn's 5 s keep-alive: the router, not the backend, closes an idle connection, so a
# request is never written to a connection the backend is closing at that very moment.
KEEPALIVE_SECONDS = 2.0
MAX_BODY_BYTES = 8 * 1024 * 1024


class RouterMetrics:
    """The router's Prometheus series, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "router_requests",
            "Requests the router answered, by track and HTTP status code.",
            ["track", "code"],
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "router_fallbacks",
            "Requests re-sent to another backend because theirs refused the connection.",
            ["from_track", "to_track"],
            registry=self.registry,
        )
        self.backend_errors = Counter(
            "router_backend_errors",
            "Backend failures seen by the router, by track and reason.",
            ["track", "reason"],
            registry=self.registry,
        )
        self.weight = Gauge(
            "router_weight_percent",
            "Share of units routed to each track, percent.",
            ["track"],
            registry=self.registry,
        )
        self.revision = Gauge(
            "router_routes_revision",
            "Revision of the serving routing table.",
            [],
            registry=self.registry,
        )
        self._children: dict[tuple[str, int], Any] = {}

    def count(self, track: str, code: int) -> None:
        """One answered request (label children cached: this runs for every request)."""
        child = self._children.get((track, code))
        if child is None:
            child = self._children[(track, code)] = self.requests.labels(track, str(code))
        child.inc()

    def export(self, table: RoutingTable) -> None:
        """Publish the weights and revision of `table`."""
        for track in TRACKS:
            self.weight.labels(track).set(table.weights.get(track, 0.0))
        self.revision.set(table.revision)


class Router:
    """The proxy and its admin API; `table` is replaced whole, never changed in place."""

    def __init__(
        self,
        *,
        table: RoutingTable,
        admin_token: str,
        persist: Callable[[RoutingTable], None] | None = None,
        backend_timeout: float = 60.0,
    ) -> None:
        self.table = table
        self.admin_token = admin_token
        self.persist = persist
        self.backend_timeout = backend_timeout
        self.metrics = RouterMetrics()
        self.metrics.export(table)
        self._session: aiohttp.ClientSession | None = None
        self._change_lock = asyncio.Lock()

    def application(self) -> web.Application:
        """The aiohttp application: admin routes first, then everything else is proxied."""
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_get("/-/healthz", self.healthz, allow_head=False)
        app.router.add_get("/-/metrics", self.metrics_page, allow_head=False)
        app.router.add_get("/-/routes", self.get_routes, allow_head=False)
        app.router.add_put("/-/routes", self.put_routes)
        app.router.add_route("*", "/-/{tail:.*}", self.admin_unknown)
        app.router.add_route("*", "/{tail:.*}", self.proxy)
        app.cleanup_ctx.append(self._client_session)
        return app

    async def _client_session(self, _: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=512, keepalive_timeout=KEEPALIVE_SECONDS)
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,  # bodies pass through as the backend encoded them
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=5.0, sock_read=self.backend_timeout
            ),
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        yield
        await self._session.close()

    # -- proxy -----------------------------------------------------------------------------

    async def proxy(self, request: web.Request) -> web.StreamResponse:
        """Forward `request` to the backend of its unit's track."""
        body = await request.read()
        table = self.table  # one table per request, whatever a PUT swaps in meanwhile
        track = table.choose(unit_id(body, request.headers.get("X-User-ID")))
        if track is None:
            return self._refuse(503, "No track serves traffic yet; set the routing table.", None)
        headers = _forward_headers(request)
        url = table.backends[track]
        try:
            try:
                return await self._forward(request, track, url, headers, body)
            except aiohttp.ClientConnectorError:
                # Refused before anything was sent: the backend never saw this request.
                self.metrics.backend_errors.labels(track, "refused").inc()
                retry = self._retry_target(track, url)
                if retry is None:
                    raise
                self.metrics.fallbacks.labels(track, retry[0]).inc()
                return await self._forward(request, retry[0], retry[1], headers, body)
        except aiohttp.ClientConnectorError:
            return self._refuse(502, f"The backend of track '{track}' is unreachable.", track)
        except TimeoutError:
            self.metrics.backend_errors.labels(track, "timeout").inc()
            return self._refuse(
                504, f"The backend of track '{track}' did not answer in time.", track
            )
        except aiohttp.ClientError:
            self.metrics.backend_errors.labels(track, "failed").inc()
            return self._refuse(
                502, f"The backend of track '{track}' failed before answering.", track
            )

    def _retry_target(self, track: str, failed_url: str) -> tuple[str, str] | None:
        # The serving table again: if the track was just moved to a new instance, that one
        # serves; otherwise its fallback (stable for the canary, the other color for blue/green).
        table = self.table
        same = table.backends.get(track)
        if same is not None and same != failed_url:
            return track, same
        fallback = table.fallback_for(track)
        if fallback is None or table.backends[fallback] == failed_url:
            return None
        return fallback, table.backends[fallback]

    async def _forward(
        self,
        request: web.Request,
        track: str,
        base_url: str,
        headers: CIMultiDict[str],
        body: bytes,
    ) -> web.Response:
        session = self._session
        if session is None:  # set by the application's cleanup_ctx before it serves
            raise RuntimeError("the router's client session is not open")
        async with session.request(
            request.method,
            base_url + request.raw_path,
            headers=headers,
            data=body or None,
            allow_redirects=False,
        ) as upstream:
            payload = await upstream.read()
            out: CIMultiDict[str] = CIMultiDict(
                (k, v) for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP
            )
            out["X-Routed-Track"] = track
            self.metrics.count(track, upstream.status)
            return web.Response(status=upstream.status, body=payload, headers=out)

    def _refuse(self, status: int, detail: str, track: str | None) -> web.Response:
        self.metrics.count(track or "none", status)
        response = web.json_response({"detail": detail}, status=status)
        if track is not None:
            response.headers["X-Routed-Track"] = track
        return response

    # -- admin -----------------------------------------------------------------------------

    async def healthz(self, _: web.Request) -> web.Response:
        """Liveness of the router itself."""
        return web.json_response({"status": "ok", "revision": self.table.revision})

    async def metrics_page(self, _: web.Request) -> web.Response:
        """Prometheus text exposition."""
        return web.Response(
            body=render_metrics(self.metrics.registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )

    async def get_routes(self, request: web.Request) -> web.Response:
        """The serving routing table."""
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

    async def admin_unknown(self, _: web.Request) -> web.Response:
        """Anything else under `/-/`."""
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


def _forward_headers(request: web.Request) -> CIMultiDict[str]:
    named = {
        token.strip().lower()
        for value in request.headers.getall("Connection", [])
        for token in value.split(",")
    }
    headers: CIMultiDict[str] = CIMultiDict(
        (k, v)
        for k, v in request.headers.items()
        if k.lower() not in HOP_BY_HOP and k.lower() not in named
    )
    peer = request.remote or ""
    prior = request.headers.get("X-Forwarded-For")
    headers["X-Forwarded-For"] = f"{prior}, {peer}" if prior else peer
    headers["X-Forwarded-Host"] = request.host
    headers["X-Forwarded-Proto"] = request.scheme
    return headers


def persist_to(store: StateStore) -> Callable[[RoutingTable], None]:
    """Save accepted tables into the platform's state file (the router's own field)."""

    def persist(table: RoutingTable) -> None:
        with store.edit() as state:
            state.routes = table.to_dict()

    return persist


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the routing table recorded in the state folder until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.toolkit.platform.router",
        description="Weighted, sticky reverse proxy in front of the local platform's tracks.",
    )
    parser.add_argument("--state-dir", type=Path, required=True, help="the platform's state folder")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, help="port (default: the state file's router port)")
    parser.add_argument(
        "--backend-timeout", type=float, default=60.0, help="seconds to wait for a backend"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    store = StateStore(args.state_dir)
    try:
        state = store.read()
        table = RoutingTable.from_dict(state.routes) if state.routes else RoutingTable.empty()
    except (ToolkitError, RoutingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    router = Router(
        table=table,
        admin_token=state.admin_token,
        persist=persist_to(store),
        backend_timeout=args.backend_timeout,
    )
    log.info("routes revision %d: %s", table.revision, table.to_dict())
    web.run_app(
        router.application(),
        host=args.host,
        port=args.port or state.router_port,
        print=None,
        access_log=None,
        shutdown_timeout=10.0,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
