"""`python -m app.model_server`: serve the embedded model on an OpenAI-compatible HTTP API."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

import uvicorn

from app.model_server.server import create_model_server


async def _exit_with_parent(parent: int, server: uvicorn.Server) -> None:
    # Started by the service as a child: leave when it is gone, even if it died without warning.
    while os.getppid() == parent:
        await asyncio.sleep(1.0)
    server.should_exit = True


async def _serve(server: uvicorn.Server, parent: int | None) -> None:
    watcher = asyncio.create_task(_exit_with_parent(parent, server)) if parent else None
    await server.serve()
    if watcher is not None:
        watcher.cancel()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse options and serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m app.model_server", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("MODEL_SERVER_HOST", "127.0.0.1"))
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("MODEL_SERVER_PORT", "8081"))
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("MODEL_SERVER_API_KEY") or None,
        help="require this Bearer token on /v1/* (env MODEL_SERVER_API_KEY)",
    )
    parser.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--log-level", default=os.environ.get("MODEL_SERVER_LOG_LEVEL", "warning"))
    args = parser.parse_args(argv)
    app = create_model_server(api_key=args.api_key)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    asyncio.run(_serve(uvicorn.Server(config), args.parent_pid))
    return 0


if __name__ == "__main__":
    sys.exit(main())
