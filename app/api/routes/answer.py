"""`POST /v1/answer` and `POST /v1/feedback`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Response, status

from app.answering import answer
from app.api.deps import Ctx, check_admin
from app.api.schemas import (
    AnswerRequest,
    AnswerResponse,
    FeedbackRequest,
    FeedbackResponse,
    VersionRef,
)
from app.core.errors import ServiceError

router = APIRouter(prefix="/v1", tags=["answers"])


@router.post("/answer", response_model=AnswerResponse)
async def post_answer(
    body: AnswerRequest,
    ctx: Ctx,
    x_pin_prompt_version: Annotated[str | None, Header(max_length=64)] = None,
    x_admin_token: Annotated[str | None, Header()] = None,
) -> Response:
    """Answer a question from the given documents, or from the bundled knowledge base.

    Admins may pin the prompt version with `X-Pin-Prompt-Version` and `X-Admin-Token`, for
    evaluations and smoke tests; anyone else is assigned a variant by user or session id.
    """
    if x_pin_prompt_version is not None:
        check_admin(ctx, x_admin_token)
    request_id = uuid.uuid4().hex
    result = await answer(ctx, body, pinned=x_pin_prompt_version, request_id=request_id)
    # Serialized once by the model we built: FastAPI would validate and encode it again.
    return Response(
        result.model_dump_json(),
        media_type="application/json",
        headers={"X-Request-ID": request_id},
    )


@router.post("/feedback", status_code=status.HTTP_202_ACCEPTED)
async def post_feedback(body: FeedbackRequest, ctx: Ctx) -> FeedbackResponse:
    """Rate an earlier answer `up` or `down`; counted for the variant that produced it."""
    variant = ctx.feedback.lookup(body.request_id)
    if variant is None:
        raise ServiceError(404, "Unknown or expired request_id.", reason="unknown_request_id")
    ctx.metrics.feedback.labels(**variant.labels(), rating=body.rating).inc()
    prompt = VersionRef(name=variant.prompt, version=variant.prompt_version)
    return FeedbackResponse(status="recorded", prompt=prompt)
