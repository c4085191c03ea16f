"""A misbehaving OpenAI-compatible endpoint for error-path tests: the model name picks the fault.

`slow` answers after 5 s, `garbage` returns 200 with a body that is not JSON, `empty` returns a
completion with no content, `fail` returns HTTP 500, `reject` returns HTTP 400. It serves no real
answers: the happy path is tested against the real embedded model server.

A suffix after a colon (`fail:retry-test`) keeps the fault and names the caller: `GET /calls`
returns how many chat calls each full model name received, so a test can count its own calls
(retries included) on this shared server.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

app = FastAPI()
calls: Counter[str] = Counter()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/calls")
async def call_counts() -> dict[str, int]:
    return dict(calls)


@app.post("/v1/chat/completions")
async def chat(request: Request) -> Response:
    body: dict[str, Any] = await request.json()
    model = str(body.get("model"))
    calls[model] += 1
    fault = model.partition(":")[0]
    if fault == "slow":
        await asyncio.sleep(5)
    if fault == "garbage":
        return PlainTextResponse(
            "<html>upstream proxy error</html>", status_code=200, media_type="application/json"
        )
    if fault == "fail":
        return JSONResponse({"error": {"message": "boom", "type": "server_error"}}, 500)
    if fault == "reject":
        return JSONResponse({"error": {"message": "bad", "type": "invalid_request_error"}}, 400)
    content = "" if fault == "empty" else "A slow but valid answer."
    return JSONResponse(
        {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": content},
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    # Stop without waiting out a `slow` call still sleeping for a client that gave up on it.
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1)
