"""Client CPU per chat-completions call: aiohttp (the provider's client) against httpx and the
`openai` SDK, on the embedded model server, same load in the same run.

Usage: python benchmarks/bench_http_clients.py [--calls 2000] [--concurrency 20]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import httpx
import openai

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scripts.toolkit.processes import free_port, python_module  # noqa: E402

MESSAGES = [
    {
        "role": "user",
        "content": "Context:\n[1] Refunds: annual plans are refunded within "
        "30 days.\n\nQuestion: When are refunds given?",
    }
]


async def _load(call: Callable[[], Awaitable[object]], calls: int, concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            await call()

    await asyncio.gather(*(one() for _ in range(calls)))


async def with_aiohttp(url: str, calls: int, concurrency: int) -> None:
    """aiohttp, as app/providers/openai_compatible.py uses it."""
    body = {"model": "extractive-base", "messages": MESSAGES}
    async with aiohttp.ClientSession() as session:

        async def call() -> None:
            async with session.post(f"{url}/v1/chat/completions", json=body) as response:
                await response.read()

        await _load(call, calls, concurrency)


async def with_httpx(url: str, calls: int, concurrency: int) -> None:
    """httpx.AsyncClient with a pool as large as the concurrency."""
    body = {"model": "extractive-base", "messages": MESSAGES}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:

        async def call() -> None:
            (await client.post(f"{url}/v1/chat/completions", json=body)).json()

        await _load(call, calls, concurrency)


async def with_sdk(url: str, calls: int, concurrency: int) -> None:
    """The official openai SDK."""
    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused") as client:

        async def call() -> None:
            await client.chat.completions.create(model="extractive-base", messages=MESSAGES)  # type: ignore[arg-type]

        await _load(call, calls, concurrency)


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        server = python_module(
            "model-server",
            "app.model_server",
            port=(port := free_port()),
            args=["--port", str(port)],
            log_dir=Path(tmp),
            cwd=REPO,
        )
        server.start().wait_http("/healthz")
        try:
            results = {}
            for name, run in (
                ("aiohttp", with_aiohttp),
                ("httpx", with_httpx),
                ("openai SDK", with_sdk),
            ):
                asyncio.run(run(server.url, 100, args.concurrency))  # warm-up
                started = time.process_time()
                asyncio.run(run(server.url, args.calls, args.concurrency))
                results[name] = (time.process_time() - started) / args.calls * 1000
        finally:
            server.stop()
    base = results["aiohttp"]
    print(f"\nClient CPU per call ({args.calls} calls, {args.concurrency} concurrent)\n")
    print("| client | CPU ms per call | vs aiohttp |")
    print("|---|---:|---:|")
    for name, ms in results.items():
        print(f"| {name} | {ms:.3f} | {ms / base:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
