"""`python -m app`: run the service with uvicorn, draining gracefully on SIGTERM."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from types import FrameType

import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError

from app.core.config import Settings
from app.main import create_app
from app.registry.configmap_source import ConfigMapSourceError, locate
from contract import settings as names
from contract.registry.loader import RegistryError, load_registry
from contract.tracks import TRACKS
from contract.validation import first_error


class DrainingServer(uvicorn.Server):
    """On the first SIGTERM/SIGINT: report not ready, keep serving for `drain_seconds` so load
    balancers stop sending, then stop accepting and let in-flight requests finish (bounded by
    `timeout_graceful_shutdown`). A second signal during the drain exits at once."""

    def __init__(self, config: uvicorn.Config, *, app: FastAPI, drain_seconds: float) -> None:
        super().__init__(config)
        self.app = app
        self.drain_seconds = drain_seconds
        self.drain_deadline: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.drain_deadline is not None:
            self.force_exit = True
            super().handle_exit(sig, frame)
            return
        ctx = getattr(self.app.state, "ctx", None)
        if ctx is not None:
            ctx.draining = True
            ctx.metrics.ready.labels(*ctx.metrics.base).set(0)
        self.drain_deadline = time.monotonic() + self.drain_seconds
        self._captured_signals.append(sig)

    async def on_tick(self, counter: int) -> bool:
        if self.drain_deadline is not None and time.monotonic() >= self.drain_deadline:
            self.should_exit = True
        return await super().on_tick(counter)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse options (which override APP_* settings) and serve until stopped."""
    parser = argparse.ArgumentParser(
        prog="python -m app",
        description=f"The reference AI service. Settings come from {names.PREFIX}* "
        "environment variables (see app/core/config.py); these options override them.",
    )
    parser.add_argument("--host", help=f"address to listen on ({names.HOST}, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help=f"port ({names.PORT}, default 8000)")
    parser.add_argument(
        "--track",
        choices=TRACKS,
        help=f"track label on metrics ({names.TRACK})",
    )
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if v is not None}
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        print(f"error: invalid setting: {first_error(exc)}", file=sys.stderr)
        return 2
    try:
        load_registry(settings.registry_dir)  # fail fast, with the file and field to fix
        locate(settings)  # and on a registry ConfigMap watch that cannot be set up
    except (RegistryError, ConfigMapSourceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        lifespan="on",
    )
    server = DrainingServer(config, app=app, drain_seconds=settings.drain_seconds)
    server.run()
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
