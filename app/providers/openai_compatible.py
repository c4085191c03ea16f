"""Provider for OpenAI-compatible APIs: OpenAI, Azure OpenAI, vLLM, Ollama, the embedded model.

It speaks the chat-completions wire format with `aiohttp`, not through the `openai` SDK or
`httpx`: measured here, the SDK's request transformation and response models, and httpx's
connection pool, each cost more CPU per call than the embedded model itself (about 2 ms per call
for httpx against 0.2 ms for aiohttp; `benchmarks/bench_http_clients.py`). The SDK remains the
reference client in the tests, which check that the embedded model server is compatible with it.
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import aiohttp

from app.providers.base import ChatCall, ChatResult, ProviderError

# Worth another try: the same request may succeed (as the OpenAI SDK retries them).
RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
MAX_BACKOFF_SECONDS = 8.0


class OpenAICompatibleProvider:
    """Chat completions over HTTP with a timeout per attempt and bounded, backed-off retries."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout: float,
        max_retries: int,
        azure_api_version: str | None = None,
        name: str = "openai-compatible",
    ) -> None:
        self.name = name
        self.max_retries = max_retries
        self._azure_api_version = azure_api_version
        headers = {"Content-Type": "application/json"}
        if azure_api_version is not None:
            headers["api-key"] = api_key
        elif api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._base_url = base_url.rstrip("/")
        self._headers = headers
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use, inside the event loop that will use it.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=200),
            )
        return self._session

    def _path(self, model: str) -> str:
        if self._azure_api_version is None:
            return "/chat/completions"
        # Azure names the deployment in the path; `model` is the deployment name.
        return f"/openai/deployments/{model}/chat/completions?api-version={self._azure_api_version}"

    async def complete(self, call: ChatCall) -> ChatResult:
        """One chat completion; every failure becomes a classified ProviderError."""
        body: dict[str, Any] = {"model": call.model, "messages": call.messages}
        for key, value in (
            ("temperature", call.temperature),
            ("max_tokens", call.max_tokens),
            ("top_p", call.top_p),
            ("seed", call.seed),
        ):
            if value is not None:
                body[key] = value
        body.update(call.extra_body)
        path = self._path(call.model)
        retry_after: float | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                await asyncio.sleep(_backoff(attempt, retry_after))
            try:
                return await self._attempt(path, body)
            except ProviderError as exc:
                if exc.kind in ("rejected", "bad_response") or attempt == self.max_retries:
                    raise
                retry_after = exc.retry_after
        raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover

    async def _attempt(self, path: str, body: dict[str, Any]) -> ChatResult:
        """One HTTP attempt; raises ProviderError (with Retry-After when the server sent one)."""
        try:
            async with self._client().post(self._base_url + path, json=body) as response:
                status = response.status
                retry_after = _retry_after(response.headers.get("retry-after"))
                payload = await response.read()
        except TimeoutError as exc:
            raise ProviderError("timeout", "The model provider timed out.") from exc
        except aiohttp.ClientError as exc:
            raise ProviderError("unavailable", "The model provider could not be reached.") from exc
        if status >= 400:
            retryable = status in RETRYABLE_STATUS
            verb = "failed" if retryable else "rejected the call"
            raise ProviderError(
                "unavailable" if retryable else "rejected",
                f"The model provider {verb} with HTTP {status}.",
                retry_after=retry_after,
            )
        return _result(payload)

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()


def _backoff(attempt: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return min(retry_after, MAX_BACKOFF_SECONDS)
    # Exponential backoff with full jitter, so many replicas do not retry in step.
    return random.uniform(0, min(0.25 * 2**attempt, MAX_BACKOFF_SECONDS))  # noqa: S311  # nosec B311


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _result(payload: bytes) -> ChatResult:
    invalid = "The model provider returned an invalid response."
    try:
        data = json.loads(payload)
        choice = data["choices"][0]
        text = choice["message"]["content"]
        usage = data.get("usage") or {}
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ProviderError("bad_response", invalid) from exc
    if not isinstance(text, str) or not text.strip():
        raise ProviderError("bad_response", "The model provider returned an empty answer.")
    try:
        return ChatResult(
            text=text.strip(),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            finish_reason=str(choice.get("finish_reason") or "stop"),
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise ProviderError("bad_response", invalid) from exc
