"""Request and response bodies of the public API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class DocumentIn(BaseModel):
    """A context document sent with the question."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str | None = Field(default=None, max_length=128)
    title: str = Field(default="", max_length=300)
    text: str = Field(min_length=1, max_length=20_000)


class AnswerRequest(BaseModel):
    """`POST /v1/answer`."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    question: str = Field(min_length=1, max_length=2_000)
    user_id: str | None = Field(default=None, min_length=1, max_length=128)
    session_id: str | None = Field(default=None, min_length=1, max_length=128)
    prompt: str | None = Field(default=None, min_length=1, max_length=64)
    documents: list[DocumentIn] | None = Field(default=None, min_length=1, max_length=20)


class Citation(BaseModel):
    """A document the answer cites as `[number]`."""

    number: int
    document_id: str
    title: str


class VersionRef(BaseModel):
    """A name and version."""

    name: str
    version: str


class Quality(BaseModel):
    """Online quality signals of the answer."""

    score: float
    groundedness: float
    refused: bool
    cited: bool


class Usage(BaseModel):
    """Tokens and estimated cost of the model call."""

    prompt_tokens: int
    completion_tokens: int
    estimated_cost_usd: float


class AnswerResponse(BaseModel):
    """The answer, what produced it, and how good it looks."""

    request_id: str
    answer: str
    citations: list[Citation]
    prompt: VersionRef
    model: VersionRef
    track: str
    app_version: str
    quality: Quality
    usage: Usage
    latency_ms: float


class FeedbackRequest(BaseModel):
    """`POST /v1/feedback`: a rating of an earlier answer."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    rating: Literal["up", "down"]


class FeedbackResponse(BaseModel):
    """Acknowledgement with the variant the rating was counted for."""

    status: Literal["recorded"]
    prompt: VersionRef
