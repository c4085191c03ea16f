"""Provider for OpenAI-compatible APIs: OpenAI, Azure OpenAI, vLLM, Ollama, the embedded model."""

from __future__ import annotations

from typing import Any

import openai

from app.providers.base import ChatCall, ChatResult, ProviderError


class OpenAICompatibleProvider:
    """Chat completions through the official `openai` SDK, with its timeouts and bounded retries."""

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
        # The SDK retries connection errors, 408/409/429 and 5xx with backoff, `max_retries` times.
        self._client: openai.AsyncOpenAI
        if azure_api_version is not None:
            self._client = openai.AsyncAzureOpenAI(
                azure_endpoint=base_url,
                api_key=api_key,
                api_version=azure_api_version,
                timeout=timeout,
                max_retries=max_retries,
            )
        else:
            # Local servers ignore the key; the SDK insists on one being set.
            self._client = openai.AsyncOpenAI(
                base_url=base_url,
                api_key=api_key or "unused",
                timeout=timeout,
                max_retries=max_retries,
            )

    async def complete(self, call: ChatCall) -> ChatResult:
        """One chat completion; every SDK failure becomes a classified ProviderError."""
        options: dict[str, Any] = {
            key: value
            for key, value in (
                ("temperature", call.temperature),
                ("max_tokens", call.max_tokens),
                ("top_p", call.top_p),
                ("seed", call.seed),
            )
            if value is not None
        }
        try:
            response = await self._client.chat.completions.create(
                model=call.model,
                messages=call.messages,  # type: ignore[arg-type]  # plain role/content dicts
                extra_body=call.extra_body or None,
                **options,
            )
        except openai.APITimeoutError as exc:
            raise ProviderError("timeout", "The model provider timed out.") from exc
        except openai.APIConnectionError as exc:
            raise ProviderError("unavailable", "The model provider could not be reached.") from exc
        except openai.APIStatusError as exc:
            if exc.status_code >= 500 or exc.status_code == 429:
                raise ProviderError(
                    "unavailable", f"The model provider failed with HTTP {exc.status_code}."
                ) from exc
            raise ProviderError(
                "rejected", f"The model provider rejected the call with HTTP {exc.status_code}."
            ) from exc
        except (openai.APIResponseValidationError, ValueError, TypeError) as exc:
            raise ProviderError(
                "bad_response", "The model provider returned an invalid response."
            ) from exc
        return _result(response)

    async def aclose(self) -> None:
        """Close the SDK's connection pool."""
        await self._client.close()


def _result(response: Any) -> ChatResult:
    try:
        choice = response.choices[0]
        text = choice.message.content
        usage = response.usage
    except (AttributeError, IndexError, TypeError) as exc:
        raise ProviderError(
            "bad_response", "The model provider returned an invalid response."
        ) from exc
    if not isinstance(text, str) or not text.strip():
        raise ProviderError("bad_response", "The model provider returned an empty answer.")
    return ChatResult(
        text=text.strip(),
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        finish_reason=str(choice.finish_reason or "stop"),
    )
