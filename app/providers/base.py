"""The provider interface: one chat call in, the answer text and usage out, or a ProviderError."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

ErrorKind = Literal["timeout", "unavailable", "rejected", "bad_response"]


class ProviderError(Exception):
    """A failed model call, classified so the service can answer 502/503/504 and count it."""

    def __init__(self, kind: ErrorKind, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        # Seconds the provider asked us to wait (Retry-After), if it said.
        self.retry_after = retry_after


@dataclass(frozen=True)
class ChatCall:
    """One chat-completions call, in provider-neutral terms."""

    model: str
    messages: list[dict[str, str]]
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    seed: int | None = None
    extra_body: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChatResult:
    """The answer and the usage the provider reported."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


class Provider(Protocol):
    """A chat model behind some API."""

    name: str

    async def complete(self, call: ChatCall) -> ChatResult:
        """Run one chat completion; raise ProviderError on any failure."""

    async def aclose(self) -> None:
        """Release connections and child processes."""
