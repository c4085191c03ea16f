"""Dependencies shared by the routes, as `Annotated` aliases."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Request

from app.context import ServiceContext
from app.core.errors import ServiceError
from contract import settings
from contract.http import ADMIN_TOKEN_HEADER


async def get_ctx(request: Request) -> ServiceContext:
    """The service context built by the lifespan (async: sync ones would run in a thread)."""
    ctx: ServiceContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ServiceContext, Depends(get_ctx)]


def check_admin(ctx: ServiceContext, token: str | None) -> None:
    """Raise 403 unless `token` is the admin token (admin features are off without one)."""
    expected = ctx.settings.admin_token
    if expected is None or not expected.get_secret_value():
        raise ServiceError(
            403,
            f"Admin features are disabled; set {settings.ADMIN_TOKEN} to enable them.",
            reason="admin_disabled",
        )
    if token is None or not hmac.compare_digest(
        token.encode(), expected.get_secret_value().encode()
    ):
        raise ServiceError(
            403, f"A valid {ADMIN_TOKEN_HEADER} header is required.", reason="forbidden"
        )


AdminTokenHeader = Annotated[
    str | None,
    Header(alias=ADMIN_TOKEN_HEADER, description=f"The admin token ({settings.ADMIN_TOKEN})."),
]


async def require_admin(ctx: Ctx, token: AdminTokenHeader = None) -> None:
    """Dependency form of `check_admin`."""
    check_admin(ctx, token)


Admin = Depends(require_admin)
