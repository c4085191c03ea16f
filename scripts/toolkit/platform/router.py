"""`python -m scripts.toolkit.platform.router`: the local platform's weighted, sticky proxy.

It stands in for a cluster's traffic splitter: `router_proxy.py` forwards each request to its
unit's track, `router_admin.py` serves the admin API under `/-/`, `router_metrics.py` holds
its series. The routing table is one immutable object swapped whole by `PUT /-/routes`, so a
change never drops a request: those in flight finish where they were sent, new ones see the
new table.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from aiohttp import web

from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.platform.router_admin import AdminApi
from scripts.toolkit.platform.router_metrics import RouterMetrics
from scripts.toolkit.platform.router_proxy import Proxy
from scripts.toolkit.platform.routing import RoutingError, RoutingTable
from scripts.toolkit.platform.state import StateStore

log = logging.getLogger("router")

MAX_BODY_BYTES = 8 * 1024 * 1024


def application(
    *,
    table: RoutingTable,
    admin_token: str,
    persist: Callable[[RoutingTable], None] | None = None,
    backend_timeout: float = 60.0,
) -> web.Application:
    """The aiohttp application: admin routes first, then everything else is proxied."""
    metrics = RouterMetrics()
    admin = AdminApi(table=table, admin_token=admin_token, metrics=metrics, persist=persist)
    proxy = Proxy(serving=lambda: admin.table, metrics=metrics, backend_timeout=backend_timeout)
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_get("/-/healthz", admin.healthz, allow_head=False)
    app.router.add_get("/-/metrics", admin.metrics_page, allow_head=False)
    app.router.add_get("/-/routes", admin.get_routes, allow_head=False)
    app.router.add_put("/-/routes", admin.put_routes)
    app.router.add_route("*", "/-/{tail:.*}", admin.unknown)
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

    app = application(
        table=table,
        admin_token=state.admin_token,
        persist=persist,
        backend_timeout=args.backend_timeout,
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
