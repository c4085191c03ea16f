"""Baselines: a bare FastAPI endpoint with the request shape of `POST /v1/answer`, and the same
endpoint making one call to the model server (the floor any service with a model call pays).

Usage: python -m benchmarks.bare_app --port 8001 [--model-url http://127.0.0.1:8081/v1]
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

MODEL_URL = ""
PROMPT = "Context:\n[1] Refunds: annual plans are refunded within 30 days.\n\nQuestion: {q}"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """One client session for the model calls."""
    async with aiohttp.ClientSession() as session:
        app.state.session = session
        yield


app = FastAPI(lifespan=lifespan)


class Question(BaseModel):
    """Same fields as the service's request, minus the optional ones."""

    question: str
    user_id: str | None = None


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness."""
    return {"status": "ok"}


@app.post("/v1/answer")
async def answer(body: Question) -> dict[str, str]:
    """A constant answer: no retrieval, no model, no metrics."""
    return {"answer": "42", "question": body.question}


@app.post("/v1/answer-via-model")
async def answer_via_model(body: Question) -> dict[str, Any]:
    """One chat completion on the model server, nothing else."""
    payload = {
        "model": "extractive-base",
        "messages": [{"role": "user", "content": PROMPT.format(q=body.question)}],
    }
    async with app.state.session.post(f"{MODEL_URL}/chat/completions", json=payload) as response:
        data = await response.json()
    return {"answer": data["choices"][0]["message"]["content"]}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model-url", default="")
    options = parser.parse_args()
    MODEL_URL = options.model_url
    uvicorn.run(app, host="127.0.0.1", port=options.port, log_level="warning", access_log=False)
