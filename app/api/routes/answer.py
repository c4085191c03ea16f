"""`POST /v1/answer` and `POST /v1/feedback`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Response, status

from app.answering import answer
from app.api.deps import AdminTokenHeader, Ctx, check_admin
from app.api.schemas import (
    AnswerRequest,
    AnswerResponse,
    FeedbackRequest,
    FeedbackResponse,
    VersionRef,
    error_responses,
)
from app.core.errors import ServiceError
from app.db.rows import feedback_row
from contract.database import FEEDBACK
from contract.http import PIN_PROMPT_VERSION_HEADER

router = APIRouter(prefix="/v1", tags=["answers"])


@router.post(
    "/answer",
    response_model=AnswerResponse,
    responses=error_responses(400, 403, 404, 409, 413, 422, 500, 502, 503, 504),
)
async def post_answer(
    body: AnswerRequest,
    ctx: Ctx,
    pin: Annotated[
        str | None,
        Header(
            alias=PIN_PROMPT_VERSION_HEADER,
            max_length=64,
            description="Serve this prompt version (admins only, with the admin token).",
        ),
    ] = None,
    admin_token: AdminTokenHeader = None,
) -> Response:
    """Answer a question from the given documents, or from the bundled knowledge base.

    Admins may pin the prompt version with `X-Pin-Prompt-Version` and `X-Admin-Token`, for
    evaluations and smoke tests; anyone else is assigned a variant by user or session id.
    The answer's `feedback_token` is what `POST /v1/feedback` takes to rate it.
    """
    if pin is not None:
        check_admin(ctx, admin_token)
    request_id = uuid.uuid4().hex
    result = await answer(ctx, body, pinned=pin, request_id=request_id)
    # Serialized once by the model we built: FastAPI would validate and encode it again.
    return Response(
        result.model_dump_json(),
        media_type="application/json",
        headers={"X-Request-ID": request_id},
    )


@router.post(
    "/feedback",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(400, 403, 404, 409, 413, 422),
)
async def post_feedback(body: FeedbackRequest, ctx: Ctx) -> FeedbackResponse:
    """Rate an earlier answer `up` or `down`; counted for the variant that produced it.

    Send the answer's `feedback_token`: any instance verifies it and counts the rating with the
    labels of the instance that answered (403 when forged or expired). A bare `request_id` is
    found only on the instance that answered (404 elsewhere). An answer is counted once (409).
    """
    if body.feedback_token is not None:
        rated = ctx.tokens.verify(body.feedback_token)
        if body.request_id is not None and body.request_id != rated.request_id:
            raise ServiceError(
                403, "The request_id is not the one the feedback_token names.", reason="mismatch"
            )
        request_id, variant = rated.request_id, rated.variant
    else:
        request_id = body.request_id or ""  # the schema requires one of the two
        found = ctx.feedback.lookup(request_id)
        if found is None:
            raise ServiceError(
                404,
                "Unknown or expired request_id; send the answer's feedback_token instead.",
                reason="unknown_request_id",
            )
        variant = found
    if not ctx.rated.first_seen(request_id):
        raise ServiceError(409, "This answer has already been rated.", reason="already_rated")
    ctx.metrics.feedback.labels(**variant.labels(), rating=body.rating).inc()
    ctx.database.submit(
        FEEDBACK, feedback_row(request_id=request_id, variant=variant, rating=body.rating)
    )
    return FeedbackResponse(
        status="recorded",
        prompt=VersionRef(name=variant.prompt, version=variant.prompt_version),
        track=variant.track,
        app_version=variant.app_version,
    )
