"""OpenAI-compatible chat-completions API over the extractive answerer (`/v1/chat/completions`)."""

from __future__ import annotations

import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from app.core.errors import invalid_request
from app.model_server.answerer import MODELS, Completion, Params, answer


class Message(BaseModel):
    """A chat message; content may be a string or a list of text parts, as in the OpenAI API."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The message's text, parts joined."""
        if isinstance(self.content, list):
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class StreamOptions(BaseModel):
    """`stream_options` of the OpenAI API."""

    include_usage: bool = False


class ChatRequest(BaseModel):
    """The subset of the chat-completions request the answerer uses; other fields are ignored."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[Message] = Field(min_length=1, max_length=100)
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=32_768)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=32_768)
    seed: int | None = None
    n: int = 1  # choices to return: only 1 is supported, and anything else is refused
    stream: bool = False
    stream_options: StreamOptions | None = None
    top_k: int = Field(default=2, ge=1, le=20)
    min_score: float = Field(default=0.35, ge=0, le=1)


def _error(
    status: int, message: str, kind: str, code: str | None = None, *, param: str | None = None
) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


def _chunk(
    cid: str,
    created: int,
    model: str,
    delta: dict[str, Any],
    finish: str | None,
    usage: dict[str, int] | None = None,
) -> str:
    choices = (
        []
        if usage is not None
        else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
    )
    body: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": choices,
    }
    if usage is not None:
        body["usage"] = usage
    return f"data: {json.dumps(body)}\n\n"


async def _stream(
    cid: str, created: int, model: str, result: Completion, usage: dict[str, int] | None
) -> AsyncIterator[str]:
    yield _chunk(cid, created, model, {"role": "assistant", "content": ""}, None)
    words = result.text.split(" ")
    for start in range(0, len(words), 4):
        piece = " ".join(words[start : start + 4])
        yield _chunk(cid, created, model, {"content": piece if start == 0 else " " + piece}, None)
    yield _chunk(cid, created, model, {}, result.finish_reason)
    if usage is not None:
        yield _chunk(cid, created, model, {}, None, usage)
    yield "data: [DONE]\n\n"


def create_model_server(*, api_key: str | None = None) -> FastAPI:
    """The model server app; when `api_key` is set, requests must carry it as a Bearer token."""
    app = FastAPI(title="Embedded extractive model", docs_url=None, redoc_url=None)
    expected = f"Bearer {api_key}".encode() if api_key else None

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(400, invalid_request(exc.errors()), "invalid_request_error")

    @app.middleware("http")
    async def _auth(request: Request, call_next: Any) -> Any:
        if expected is not None and request.url.path.startswith("/v1/"):
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return _error(
                    401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
                )
        return await call_next(request)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "embedded"} for m in MODELS]
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(body: ChatRequest) -> JSONResponse | StreamingResponse:
        if body.model not in MODELS:
            return _error(
                404,
                f"The model `{body.model}` does not exist.",
                "invalid_request_error",
                "model_not_found",
            )
        if body.n != 1:
            return _error(
                400,
                f"n={body.n} is not supported: this model returns exactly one choice (n=1).",
                "invalid_request_error",
                "unsupported_value",
                param="n",
            )
        params = Params(
            top_k=body.top_k,
            min_score=body.min_score,
            temperature=body.temperature,
            max_tokens=body.max_completion_tokens or body.max_tokens or 256,
            seed=body.seed or 0,
        )
        messages = [{"role": m.role, "content": m.text()} for m in body.messages]
        result = answer(body.model, messages, params)
        cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        usage = {
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "total_tokens": result.prompt_tokens + result.completion_tokens,
        }
        if body.stream:
            include = body.stream_options is not None and body.stream_options.include_usage
            return StreamingResponse(
                _stream(cid, created, body.model, result, usage if include else None),
                media_type="text/event-stream",
            )
        return JSONResponse(
            {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": body.model,
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": result.finish_reason,
                        "logprobs": None,
                        "message": {"role": "assistant", "content": result.text},
                    }
                ],
                "usage": usage,
            }
        )

    return app
