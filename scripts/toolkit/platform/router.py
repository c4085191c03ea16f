"""`python -m scripts.toolkit.platform.router`: the local platform's weighted, sticky proxy.

It stands in for a cluster's traffic splitter: `router_proxy.py` forwards each request to its
unit's track, `router_metrics.py` holds its series, and the admin API is served here under
`/-/`: `GET /-/healthz` and `GET /-/metrics` are open, `GET /-/routes` and `PUT /-/routes` need
the `X-Admin-Token` header. The routing table is one immutable object swapped whole by
`PUT /-/routes`, so a change never drops a request: those in flight finish where they were sent,
new ones see the new table. The accepted table is saved (`persist`) before it serves, so a
restarted router keeps its weights.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client import generate_latest as render_metrics

from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.platform.router_metrics import RouterMetrics
from scripts.toolkit.platform.router_proxy import Proxy
from scripts.toolkit.platform.routing import RoutingError, RoutingTable
from scripts.toolkit.platform.state import StateStore

log = logging.getLogger("router")

MAX_BODY_BYTES = 8 * 1024 * 1024


def _refused(status: type[web.HTTPException], detail: str) -> web.HTTPException:
    """An admin request refused with `status` and a one-sentence `detail` (raised)."""
    return status(text=json.dumps({"detail": detail}), content_type="application/json")


def _proposed_table(body: bytes) -> tuple[dict[str, Any], RoutingTable]:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise _refused(web.HTTPBadRequest, "The body is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise _refused(web.HTTPBadRequest, "The body must be a JSON object.")
    try:
        return data, RoutingTable.from_dict(data)
    except RoutingError as exc:
        raise _refused(web.HTTPBadRequest, str(exc)) from exc


def application(
    *,
    table: RoutingTable,
    admin_token: str,
    persist: Callable[[RoutingTable], None] | None = None,
    backend_timeout: float = 60.0,
    version_of: Callable[[str], str] = lambda _url: "",
) -> web.Application:
    """The aiohttp application: admin routes first, then everything else is proxied. It owns
    the serving `table`, which it replaces whole, never changes in place."""
    metrics = RouterMetrics()
    metrics.export(table)
    change_lock = asyncio.Lock()

    def authorize(request: web.Request) -> None:
        token = request.headers.get("X-Admin-Token", "")
        if not admin_token or not hmac.compare_digest(token.encode(), admin_token.encode()):
            raise _refused(web.HTTPForbidden, "A valid X-Admin-Token header is required.")

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "revision": table.revision})

    async def metrics_page(_: web.Request) -> web.Response:
        body = render_metrics(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def get_routes(request: web.Request) -> web.Response:
        authorize(request)
        return web.json_response(table.to_dict())

    async def put_routes(request: web.Request) -> web.Response:
        """Replace the routing table; `revision` in the body, when given, must be the serving
        one (compare-and-swap: 409 if someone changed it meanwhile)."""
        authorize(request)
        data, proposed = _proposed_table(await request.read())
        async with change_lock:
            accepted = await accept(proposed, data.get("revision"))
        return web.json_response(accepted.to_dict())

    async def accept(proposed: RoutingTable, expected: object) -> RoutingTable:
        nonlocal table
        current = table
        if expected is not None and expected != current.revision:
            raise _refused(
                web.HTTPConflict,
                f"The routing table is at revision {current.revision}, not {expected}; "
                "read it again.",
            )
        if proposed.changed() == current.changed():
            return current
        new = replace(proposed, revision=current.revision + 1)
        if persist is not None:
            try:
                await asyncio.to_thread(persist, new)
            except (OSError, ToolkitError) as exc:
                log.exception("could not save the routing table")
                raise _refused(
                    web.HTTPInternalServerError,
                    "The routing table could not be saved; see the router log.",
                ) from exc
        table = new  # the one atomic switch
        metrics.export(new)
        log.info("routes revision %d: %s", new.revision, new.to_dict())
        return new

    async def unknown(_: web.Request) -> web.Response:
        raise _refused(web.HTTPNotFound, "Unknown admin endpoint; see GET /-/routes.")

    proxy = Proxy(
        serving=lambda: table,
        metrics=metrics,
        backend_timeout=backend_timeout,
        version_of=version_of,
    )
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_get("/-/healthz", healthz, allow_head=False)
    app.router.add_get("/-/metrics", metrics_page, allow_head=False)
    app.router.add_get("/-/routes", get_routes, allow_head=False)
    app.router.add_put("/-/routes", put_routes)
    app.router.add_route("*", "/-/{tail:.*}", unknown)
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    app.cleanup_ctx.append(proxy.client_session)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the routing table recorded in the state folder until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.toolkit.platform.router",
        description="Weighted, sticky reverse proxy in front of the local platform's tracks.",
    )
    parser.add_argument("--platform-dir", type=Path, required=True, help="the platform's folder")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, help="port (default: the state file's router port)")
    parser.add_argument(
        "--backend-timeout", type=float, default=60.0, help="seconds to wait for a backend"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    store = StateStore(args.platform_dir)
    try:
        state = store.read()
        table = RoutingTable.from_dict(state.routes) if state.routes else RoutingTable.empty()
    except (ToolkitError, RoutingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def persist(table: RoutingTable) -> None:  # the router's own field of the state file
        with store.edit() as editing:
            editing.routes = table.to_dict()

    def version_of(url: str) -> str:  # the version the platform recorded for that instance
        recorded = store.try_read()
        records = [*recorded.processes.values(), *recorded.retiring] if recorded else []
        return next((str(r.version or "") for r in records if r.url == url), "")

    app = application(
        table=table,
        admin_token=state.admin_token,
        persist=persist,
        backend_timeout=args.backend_timeout,
        version_of=version_of,
    )
    log.info("routes revision %d: %s", table.revision, table.to_dict())
    web.run_app(
        app,
        host=args.host,
        port=args.port or state.router_port,
        print=None,
        access_log=None,
        shutdown_timeout=10.0,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
