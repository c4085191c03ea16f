"""Request and response bodies of the public API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.feedback import TOKEN_PATTERN
from contract.settings import FEEDBACK_SECRET

# Strings are taken as sent (no stripping): what the schema allows, the service accepts.


class ErrorBody(BaseModel):
    """Every refused or failed request: one sentence saying what went wrong and what to do."""

    detail: str = Field(examples=["Field 'question': String should have at least 1 character."])


ERROR_DESCRIPTIONS = {
    400: "Malformed JSON, or a feedback_token whose content is unreadable.",
    403: "Admin token missing or wrong; or a feedback_token forged, expired or for another id.",
    404: "Unknown prompt, prompt version or request id.",
    409: "A conflict: an unregistered model, or an answer already rated.",
    413: "Request body over APP_MAX_BODY_BYTES.",
    422: "A field missing, unknown or out of bounds; `detail` names the first one.",
    500: "An unexpected error (or an injected fault); the service log has the details.",
    502: "The model provider returned something unusable.",
    503: "The model provider failed or is unavailable.",
    504: "The model provider timed out.",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error codes, all with the `ErrorBody` shape."""
    return {code: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[code]} for code in codes}


class DocumentIn(BaseModel):
    """A context document sent with the question."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, max_length=128)
    title: str = Field(default="", max_length=300)
    text: str = Field(min_length=1, max_length=20_000)


class AnswerRequest(BaseModel):
    """`POST /v1/answer`."""

    model_config = ConfigDict(extra="forbid")

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
    feedback_token: str = Field(
        pattern=TOKEN_PATTERN,
        description="Send this with a rating to `POST /v1/feedback`: it names the answer and the "
        f"variant that served it, signed (HMAC-SHA256, `{FEEDBACK_SECRET}`), so any instance "
        "can count the rating. Expires after `APP_FEEDBACK_TOKEN_MAX_AGE_SECONDS`.",
    )
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
    """`POST /v1/feedback`: a rating of an earlier answer, named by its `feedback_token`.

    `request_id` alone works only on the instance that answered (and remembers it)."""

    model_config = ConfigDict(
        extra="forbid",
        # One of the two, as a string (null names nothing), as the validator below requires.
        json_schema_extra={
            "anyOf": [
                {"required": [field], "properties": {field: {"type": "string"}}}
                for field in ("feedback_token", "request_id")
            ]
        },
    )

    feedback_token: str | None = Field(
        default=None,
        max_length=2_000,
        pattern=TOKEN_PATTERN,
        description="The `feedback_token` of the answer; counted for the variant that served it.",
    )
    request_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    rating: Literal["up", "down"]

    @model_validator(mode="after")
    def _names_an_answer(self) -> FeedbackRequest:
        if self.feedback_token is None and self.request_id is None:
            raise ValueError("send the answer's feedback_token (or its request_id)")
        return self


class FeedbackResponse(BaseModel):
    """Acknowledgement with the variant the rating was counted for."""

    status: Literal["recorded"]
    prompt: VersionRef
    track: str
    app_version: str


class ReadyResponse(BaseModel):
    """`GET /readyz`: 200 when ready, 503 (same body) when not."""

    status: Literal["ready", "not ready"]
    checks: dict[str, str]
    registry: str


class ReloadResponse(BaseModel):
    """`POST /admin/registry/reload`: 200 when applied or unchanged, 409 when refused."""

    outcome: str
    digest: str
    error: str | None
    registry: dict[str, Any]
