"""`/healthz`, `/readyz`, `/version` and `/metrics`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.api.deps import Ctx
from app.api.schemas import ReadyResponse
from app.context import registry_summary

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process serves HTTP. No dependency is called."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=ReadyResponse,
    responses={503: {"model": ReadyResponse, "description": "Not ready (or draining)."}},
)
async def readyz(ctx: Ctx) -> dict[str, Any] | JSONResponse:
    """Readiness: a real model call through the loaded registry succeeds, and not draining."""
    ok, checks = await ctx.probe()
    body = {
        "status": "ready" if ok else "not ready",
        "checks": checks,
        "registry": ctx.registry.digest[:12],
    }
    return body if ok else JSONResponse(body, status_code=503)


@router.get("/version")
async def version(ctx: Ctx) -> dict[str, Any]:
    """Image tag, git SHA, track and the loaded prompt/model versions."""
    s = ctx.settings
    return {
        "app_version": s.version,
        "git_sha": s.git_sha,
        "track": s.track,
        "provider": ctx.provider.name,
        "registry": registry_summary(ctx.registry),
        "registry_error": ctx.store.last_error,
    }


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(ctx: Ctx) -> Response:
    """Prometheus text exposition of this process's registry (`text/plain`, not JSON)."""
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
