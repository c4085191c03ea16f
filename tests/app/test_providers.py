"""OpenAICompatibleProvider against real servers: the model server, and one that misbehaves."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from app.providers.base import ChatCall, ProviderError
from app.providers.openai_compatible import OpenAICompatibleProvider
from scripts.toolkit.processes import ManagedProcess, free_port

pytestmark = pytest.mark.integration

MESSAGES = [
    {"role": "system", "content": "Answer only from the numbered context and cite it as [n]."},
    {
        "role": "user",
        "content": "Context:\n[1] Support Hours: Support answers tickets within one business "
        "day.\n\nQuestion: How fast does support answer tickets?",
    },
]


def provider(url: str, *, timeout: float = 5.0, max_retries: int = 0) -> OpenAICompatibleProvider:
    """A provider for the OpenAI-compatible API under `url` (`.../v1`)."""
    return OpenAICompatibleProvider(
        base_url=url, api_key="", timeout=timeout, max_retries=max_retries
    )


async def failure(
    url: str, model: str, *, timeout: float = 5.0, max_retries: int = 0
) -> ProviderError:
    """The ProviderError one call to `model` raises."""
    client = provider(url, timeout=timeout, max_retries=max_retries)
    try:
        with pytest.raises(ProviderError) as caught:
            await client.complete(ChatCall(model=model, messages=MESSAGES))
    finally:
        await client.aclose()
    return caught.value


async def test_call_succeeds_with_usage(model_server: ManagedProcess) -> None:
    client = provider(f"{model_server.url}/v1")
    try:
        result = await client.complete(
            ChatCall(model="extractive-base", messages=MESSAGES, max_tokens=50, seed=7)
        )
    finally:
        await client.aclose()
    assert "one business day" in result.text
    assert "[1]" in result.text
    assert result.prompt_tokens > 0
    assert result.completion_tokens > 0
    assert result.finish_reason == "stop"


@pytest.mark.parametrize(
    ("model", "kind"),
    [
        ("slow", "timeout"),
        ("garbage", "bad_response"),
        ("empty", "bad_response"),
        ("fail", "unavailable"),
        ("reject", "rejected"),
    ],
)
async def test_failures_are_classified(
    broken_provider: ManagedProcess, model: str, kind: str
) -> None:
    started = time.monotonic()
    error = await failure(f"{broken_provider.url}/v1", model, timeout=0.5)
    assert error.kind == kind
    assert time.monotonic() - started < 2.5, "the timeout bounds every call"
    assert error.message.endswith(".")


async def test_unreachable_provider_is_unavailable() -> None:
    error = await failure(f"http://127.0.0.1:{free_port()}/v1", "extractive-base")
    assert error.kind == "unavailable"


async def test_server_errors_are_retried_max_retries_times(
    broken_provider: ManagedProcess,
) -> None:
    model = f"fail:{uuid.uuid4().hex}"  # this test's own call counter on the shared server
    error = await failure(f"{broken_provider.url}/v1", model, max_retries=2)
    assert error.kind == "unavailable"
    async with httpx.AsyncClient() as client:
        calls = (await client.get(f"{broken_provider.url}/calls")).json()
    assert calls[model] == 3


async def test_client_errors_are_not_retried(broken_provider: ManagedProcess) -> None:
    model = f"reject:{uuid.uuid4().hex}"
    error = await failure(f"{broken_provider.url}/v1", model, max_retries=2)
    assert error.kind == "rejected"
    async with httpx.AsyncClient() as client:
        calls = (await client.get(f"{broken_provider.url}/calls")).json()
    assert calls[model] == 1
