"""Admin endpoints, behind `X-Admin-Token`."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import Admin, Ctx
from app.api.schemas import ReloadResponse, error_responses
from app.context import registry_summary

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Admin])


@router.post(
    "/registry/reload",
    response_model=ReloadResponse,
    responses={
        409: {"model": ReloadResponse, "description": "The registry change was refused."},
        **error_responses(403, 413),
    },
)
async def reload_registry(ctx: Ctx) -> dict[str, Any] | JSONResponse:
    """Reload the registry now; a malformed one is refused (409) and the last good one stays."""
    result = await asyncio.to_thread(ctx.store.reload, force=True)
    body = {
        "outcome": result.outcome,
        "digest": ctx.registry.digest,
        "error": result.error,
        "registry": registry_summary(ctx.registry),
    }
    return JSONResponse(body, status_code=409) if result.outcome == "rejected" else body
