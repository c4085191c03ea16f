"""Default provider: the embedded model server as a child process, called over HTTP."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess  # nosec B404  # starts this package's own model server, no shell
import sys
import time

import httpx

from app.providers.base import ChatCall, ChatResult
from app.providers.openai_compatible import OpenAICompatibleProvider


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedProvider:
    """`python -m app.model_server` as a child, reached with the same client as hosted models."""

    name = "embedded"

    def __init__(self, *, port: int, timeout: float, max_retries: int) -> None:
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        command = [
            sys.executable,
            "-m",
            "app.model_server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--parent-pid",
            str(os.getpid()),
        ]
        self._process = subprocess.Popen(command)  # noqa: S603  # nosec B603
        self._client = OpenAICompatibleProvider(
            base_url=self.base_url,
            api_key="",
            timeout=timeout,
            max_retries=max_retries,
            name=self.name,
        )

    async def wait_ready(self, *, timeout: float = 30.0) -> None:
        """Wait until the child answers `/healthz`; raise RuntimeError if it dies or stalls."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    raise RuntimeError(
                        f"The embedded model server exited with code {self._process.returncode}."
                    )
                try:
                    if (
                        await client.get(f"http://127.0.0.1:{self.port}/healthz")
                    ).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"The embedded model server did not start within {timeout:.0f} s.")

    async def complete(self, call: ChatCall) -> ChatResult:
        """One chat completion through the child's HTTP API."""
        return await self._client.complete(call)

    async def aclose(self) -> None:
        """Close the client, then stop the child and wait for it."""
        await self._client.aclose()
        if self._process.poll() is None:
            self._process.terminate()
            try:
                await asyncio.to_thread(self._process.wait, 10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                await asyncio.to_thread(self._process.wait)
