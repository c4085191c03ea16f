"""The router's proxy: each request forwarded to its unit's track, once to a fallback if refused.

Every request is assigned to a track by its unit id (see `routing.py`) and forwarded (method,
path, query, headers minus hop-by-hop, body) to that track's backend; the response carries
`X-Routed-Track`. A backend that refuses the connection (a dead process) never saw the request,
so it is sent once to stable instead and counted as a fallback; every request a backend failed
(refused, timed out, broke off) is counted as its track's failure, with the version of that
backend (`version_of`), even when the fallback then answered it. A request that reached a
backend is never sent again (aiohttp itself retries only idempotent methods on a stale
keep-alive connection, as RFC 9112 allows).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from scripts.toolkit.platform.router_metrics import RouterMetrics
from scripts.toolkit.platform.routing import RoutingTable, unit_id

# Hop-by-hop headers (RFC 9110 7.6.1) are the proxy's own business, never forwarded; the
# length and host are set again for the next hop.
HOP_BY_HOP = frozenset(
    "connection keep-alive proxy-authenticate proxy-authorization proxy-connection te trailer "
    "transfer-encoding upgrade host content-length".split()
)
# Below uvicorn's 5 s keep-alive: the router, not the backend, closes an idle connection, so a
# request is never written to a connection the backend is closing at that very moment.
KEEPALIVE_SECONDS = 2.0


class Proxy:
    """Forwards requests by the serving table, which `serving` returns (it is swapped whole)."""

    def __init__(
        self,
        *,
        serving: Callable[[], RoutingTable],
        metrics: RouterMetrics,
        backend_timeout: float = 60.0,
        version_of: Callable[[str], str] = lambda _url: "",
    ) -> None:
        self.serving = serving
        self.metrics = metrics
        self.backend_timeout = backend_timeout
        self.version_of = version_of  # the app version at a backend URL ("" unknown)
        self._versions: dict[tuple[int, str], str] = {}
        self._session: aiohttp.ClientSession | None = None

    async def client_session(self, _: web.Application) -> AsyncIterator[None]:
        """The backends' connection pool, open while the application serves (a cleanup_ctx)."""
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

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Forward `request` to the backend of its unit's track."""
        body = await request.read()
        table = self.serving()  # one table per request, whatever a PUT swaps in meanwhile
        track = table.choose(unit_id(body, request.headers.get("X-User-ID")))
        if track is None:
            return self._refuse(503, "No track serves traffic yet; set the routing table.", None)
        headers = forward_headers(request)
        first = target = (track, table.backends[track])
        try:
            try:
                return await self._forward(request, *target, headers, body)
            except aiohttp.ClientConnectorError:
                # Refused before anything was sent: the backend never saw this request.
                self._failed(*target, "refused")
                retry = self._retry_target(*target)
                if retry is None:
                    raise
                self.metrics.fallbacks.labels(track, retry[0]).inc()
                target = retry
                return await self._forward(request, *target, headers, body)
        except aiohttp.ClientConnectorError:
            if target != first:
                self._failed(*target, "refused")
            return self._refuse(502, f"The backend of track '{track}' is unreachable.", track)
        except TimeoutError:
            self._failed(*target, "timeout")
            return self._refuse(
                504, f"The backend of track '{track}' did not answer in time.", track
            )
        except aiohttp.ClientError:
            self._failed(*target, "failed")
            return self._refuse(
                502, f"The backend of track '{track}' failed before answering.", track
            )

    def _failed(self, track: str, url: str, reason: str) -> None:
        # Versions are looked up once per backend URL and routing table (a new instance, even
        # on a reused port, comes with a new table).
        key = (self.serving().revision, url)
        if (version := self._versions.get(key)) is None:
            version = self._versions[key] = self.version_of(url)
        self.metrics.backend_errors.labels(track, version, reason).inc()

    def _retry_target(self, track: str, failed_url: str) -> tuple[str, str] | None:
        # The serving table again: if the track was just moved to a new instance, that one
        # serves; otherwise its fallback (stable for the canary, the other color for blue/green).
        table = self.serving()
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


def forward_headers(request: web.Request) -> CIMultiDict[str]:
    """The headers to send on: not hop-by-hop nor named by `Connection`, plus X-Forwarded-*."""
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
