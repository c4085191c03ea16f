"""ASGI middleware: request metrics by route template, and the request body size limit."""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.metrics import ServiceMetrics


class BodyTooLarge(Exception):
    """The request body passed the configured limit while being read."""


async def _send_json(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class ObservabilityMiddleware:
    """Counts and times every HTTP request, and refuses bodies over `max_body_bytes` with 413."""

    def __init__(self, app: ASGIApp, *, metrics: ServiceMetrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}
        limit = self.max_body_bytes

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        m = self.metrics
        m.inflight.labels(*m.base).inc()
        try:
            length = dict(scope["headers"]).get(b"content-length")
            if length is not None:
                if not length.isdigit() or int(length) > limit:
                    raise BodyTooLarge
            elif scope["method"] in ("POST", "PUT", "PATCH"):
                # A chunked body has no length up front: read it here, within the limit, and
                # replay it, so the route never sees a body larger than allowed.
                receive = await _buffered(receive, limit)
            await self.app(scope, receive, send_wrapper)
        except BodyTooLarge:
            status["code"] = 413
            m.request_errors.labels(*m.base, "body_too_large").inc()
            await _send_json(send, 413, f"Request body is larger than {limit} bytes.")
        finally:
            m.inflight.labels(*m.base).dec()
            route = _route(scope)
            method = scope["method"]
            m.http_requests.labels(*m.base, method, route, str(status["code"])).inc()
            m.http_duration.labels(*m.base, method, route).observe(time.perf_counter() - started)


async def _buffered(receive: Receive, limit: int) -> Receive:
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        if size > limit:
            raise BodyTooLarge
        if not message.get("more_body", False):
            break

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return replay


def _route(scope: Scope) -> str:
    # The matched route's template keeps the label set small; unmatched paths share one label.
    route: Any = scope.get("route")
    return str(getattr(route, "path", "unmatched"))
