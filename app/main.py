"""The app factory: routes, error handlers, middleware, and the lifespan that builds the context."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.routes import admin, answer, health
from app.context import (
    FeedbackLog,
    RatedRequests,
    Readiness,
    RecentUnits,
    ServiceContext,
    export_registry,
)
from app.core.config import Settings, get_settings
from app.core.errors import ServiceError, invalid_request
from app.core.metrics import ServiceMetrics
from app.core.middleware import ObservabilityMiddleware
from app.db.writer import DatabaseWriter
from app.feedback import FeedbackTokens
from app.knowledge.retrieval import Retriever, load_documents
from app.providers.factory import build_provider
from app.registry.configmap_source import ConfigMapSource
from app.registry.store import RegistryStore

if TYPE_CHECKING:
    from sqlalchemy import Engine

log = logging.getLogger("app")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load registry and knowledge base, start the provider; undo it all on shutdown."""
    settings: Settings = app.state.settings
    metrics: ServiceMetrics = app.state.metrics
    store = RegistryStore(settings.registry_dir)
    configmap = ConfigMapSource.from_settings(settings, store)  # a misconfiguration stops here
    retriever = Retriever(load_documents(settings.knowledge_dir))
    provider = await build_provider(settings)
    database = DatabaseWriter(
        settings.database_url,
        metrics=metrics,
        capacity=settings.database_queue_rows,
        prepare=_migrate_expand if settings.database_auto_migrate else None,
    ).start()
    ctx = ServiceContext(
        settings=settings,
        metrics=metrics,
        store=store,
        retriever=retriever,
        provider=provider,
        feedback=FeedbackLog(settings.feedback_window),
        readiness=Readiness(cache_seconds=settings.ready_cache_seconds),
        units=RecentUnits(settings.feedback_window),
        tokens=FeedbackTokens.from_settings(settings),
        rated=RatedRequests(settings.feedback_window),
        database=database,
    )
    store._on_reload = ctx.record_registry
    export_registry(metrics, store.current)
    app.state.ctx = ctx
    log.info(
        "serving %s (track %s) with registry %s",
        settings.version,
        settings.track,
        store.current.summary()["prompts"],
    )
    watchers: list[asyncio.Task[None]] = []
    if settings.registry_reload_seconds > 0:
        watchers.append(asyncio.create_task(store.watch(settings.registry_reload_seconds)))
    if configmap is not None:
        watchers.append(asyncio.create_task(configmap.run()))
    try:
        yield
    finally:
        for watcher in watchers:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await provider.aclose()
        await asyncio.to_thread(database.close, settings.database_flush_seconds)


def _migrate_expand(engine: Engine) -> None:
    # Imported here, in the writer thread on its first connection: Alembic stays off start-up.
    from app.db.migrate import upgrade  # noqa: PLC0415

    steps = upgrade(engine, "expand")
    if steps.pending:
        log.info("database migrated to %s (expand)", steps.target)
    if steps.held_back:
        log.info("contract revisions wait for `python -m app.db upgrade --phase contract`: %s",
                 ", ".join(steps.held_back))  # fmt: skip


def _first_error(exc: RequestValidationError) -> tuple[int, str, str]:
    errors = exc.errors()
    if errors[0].get("type") == "json_invalid":
        return 400, "Request body is not valid JSON.", "invalid_json"
    return 422, invalid_request(errors), "invalid_request"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service for `settings` (default: from the environment)."""
    settings = settings or get_settings()
    app = FastAPI(title="AI answer service", version=settings.version, lifespan=lifespan)
    app.state.settings = settings
    metrics = ServiceMetrics(
        track=settings.track, app_version=settings.version, git_sha=settings.git_sha
    )
    app.state.metrics = metrics
    app.add_middleware(
        ObservabilityMiddleware, metrics=metrics, max_body_bytes=settings.max_body_bytes
    )
    for router in (answer.router, health.router, admin.router):
        app.include_router(router)

    def refuse(status: int, detail: str, reason: str) -> JSONResponse:
        metrics.request_errors.labels(*metrics.base, reason).inc()
        return JSONResponse({"detail": detail}, status_code=status)

    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return refuse(exc.status_code, exc.detail, exc.reason)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return refuse(*_first_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        reason = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        response = refuse(exc.status_code, f"{exc.detail}.".replace("..", "."), reason)
        # A 405 names the methods the path does allow (RFC 9110), as Starlette's headers say.
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return refuse(500, "Internal error; the service log has the details.", "internal")

    return app
