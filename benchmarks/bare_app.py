"""The baseline: a bare FastAPI endpoint with the same request shape as `POST /v1/answer`."""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


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


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    uvicorn.run(
        app, host="127.0.0.1", port=parser.parse_args().port, log_level="warning", access_log=False
    )
