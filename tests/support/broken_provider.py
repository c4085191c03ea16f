"""A misbehaving OpenAI-compatible endpoint for error-path tests: the model name picks the fault.

`slow` answers after 5 s, `garbage` returns 200 with a body that is not JSON, `empty` returns a
completion with no content, `fail` returns HTTP 500, `reject` returns HTTP 400. It serves no real
answers: the happy path is tested against the real embedded model server.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/v1/chat/completions")
async def chat(request: Request) -> Response:
    body: dict[str, Any] = await request.json()
    model = body.get("model")
    if model == "slow":
        await asyncio.sleep(5)
    if model == "garbage":
        return PlainTextResponse(
            "<html>upstream proxy error</html>", status_code=200, media_type="application/json"
        )
    if model == "fail":
        return JSONResponse({"error": {"message": "boom", "type": "server_error"}}, 500)
    if model == "reject":
        return JSONResponse({"error": {"message": "bad", "type": "invalid_request_error"}}, 400)
    content = "" if model == "empty" else "A slow but valid answer."
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
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
