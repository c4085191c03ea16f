"""Answer one question: pick the variant, retrieve context, call the model, score, count."""

from __future__ import annotations

import asyncio
import random
import time

from app.api.schemas import AnswerRequest, AnswerResponse, Citation, Quality, Usage, VersionRef
from app.context import ServiceContext
from app.core.errors import ServiceError
from app.db.rows import answer_row, unit_hash
from app.knowledge.retrieval import Document
from app.providers.base import ChatCall, ProviderError
from app.quality import assess, cited_numbers
from contract.database import ANSWER_LOG
from contract.metrics import Variant
from contract.registry.loader import Registry
from contract.registry.schema import ModelVersion, PromptVersion

PROVIDER_STATUS = {"timeout": 504, "unavailable": 503, "rejected": 502, "bad_response": 502}


def render_context(documents: list[Document]) -> str:
    """Numbered context lines, `[n] Title: text`, as the prompt templates expect."""
    return "\n".join(f"[{n}] {d.title}: {d.text}" for n, d in enumerate(documents, start=1))


def choose_variant(
    registry: Registry, name: str, unit_id: str, *, pinned: str | None
) -> PromptVersion:
    """The version of prompt `name` for this request: pinned by an admin, else sticky by unit."""
    prompt_set = registry.prompts.get(name)
    if prompt_set is None:
        raise ServiceError(404, f"Unknown prompt '{name}'.", reason="unknown_prompt")
    if pinned is None:
        return prompt_set.assign(unit_id)
    version = prompt_set.versions.get(pinned)
    if version is None:
        raise ServiceError(
            404, f"Prompt '{name}' has no version '{pinned}'.", reason="unknown_version"
        )
    if version.model not in registry.models:
        raise ServiceError(
            409,
            f"Version '{pinned}' uses {version.model}, which is not registered.",
            reason="unknown_model",
        )
    return version


async def answer(
    ctx: ServiceContext, body: AnswerRequest, *, pinned: str | None, request_id: str
) -> AnswerResponse:
    """Answer `body`; raises ServiceError with a short detail for every expected failure."""
    started = time.perf_counter()
    registry = ctx.registry  # one snapshot per request: a reload may swap it meanwhile
    unit_id = body.user_id or body.session_id or request_id
    name = body.prompt or ctx.settings.default_prompt
    version = choose_variant(registry, name, unit_id, pinned=pinned)
    model = registry.model_for(version)
    m = ctx.metrics
    variant = Variant(
        track=ctx.settings.track,
        app_version=ctx.settings.version,
        prompt=version.name,
        prompt_version=version.version,
        model=model.name,
        model_version=model.version,
    )
    labels = variant.labels()
    if ctx.units.first_seen(f"{version.salt}:{unit_id}"):
        m.units.labels(**labels).inc()
    unit = unit_hash(version.salt, unit_id)
    try:
        return await _answer(ctx, body, version, model, variant, request_id, started, unit)
    except Exception as exc:
        # A failed answer is a failed answer, not a missing one: it scores 0, so the quality
        # score is judged per request, errors included.
        m.answers.labels(**labels, outcome="error").inc()
        m.quality.labels(**labels).observe(0.0)
        ctx.database.submit(
            ANSWER_LOG,
            answer_row(
                request_id=request_id,
                variant=variant,
                unit=unit,
                outcome="error",
                quality_score=0.0,
                latency_seconds=time.perf_counter() - started,
                question=body.question if ctx.settings.database_log_questions else None,
            ),
        )
        if not isinstance(exc, ProviderError):
            raise
        m.model_errors.labels(**labels, reason=exc.kind).inc()
        raise ServiceError(
            PROVIDER_STATUS[exc.kind], exc.message, reason=f"provider_{exc.kind}"
        ) from exc


async def _answer(
    ctx: ServiceContext,
    body: AnswerRequest,
    version: PromptVersion,
    model: ModelVersion,
    variant: Variant,
    request_id: str,
    started: float,
    unit: str,
) -> AnswerResponse:
    if body.documents is not None:
        documents = [
            Document(id=d.id or f"doc-{n}", title=d.title, text=d.text)
            for n, d in enumerate(body.documents, start=1)
        ]
    else:
        documents = ctx.retriever.search(body.question, k=ctx.settings.retrieve_top_k)
    params = version.parameters.merged_over(model.parameters)
    call = ChatCall(
        model=model.provider_model,
        messages=version.render(question=body.question, context=render_context(documents)),
        temperature=params.temperature,
        max_tokens=params.max_tokens,
        top_p=params.top_p,
        seed=params.seed,
        extra_body=params.extra_body,
    )
    await _inject_faults(ctx)
    result = await ctx.provider.complete(call)

    signals = assess(result.text, documents)
    cost = (
        result.prompt_tokens * model.pricing.input_per_1k_tokens
        + result.completion_tokens * model.pricing.output_per_1k_tokens
    ) / 1000
    elapsed = time.perf_counter() - started
    m = ctx.metrics
    labels = variant.labels()
    m.answers.labels(**labels, outcome="refused" if signals.refused else "answered").inc()
    m.answer_duration.labels(**labels).observe(elapsed)
    m.tokens.labels(**labels, kind="prompt").inc(result.prompt_tokens)
    m.tokens.labels(**labels, kind="completion").inc(result.completion_tokens)
    m.cost.labels(**labels).observe(cost)
    m.quality.labels(**labels).observe(signals.score)
    m.groundedness.labels(**labels).observe(signals.groundedness)
    if signals.cited:
        m.citations.labels(**labels).inc()
    ctx.feedback.remember(request_id, variant)
    ctx.database.submit(
        ANSWER_LOG,
        answer_row(
            request_id=request_id,
            variant=variant,
            unit=unit,
            outcome="refused" if signals.refused else "answered",
            quality_score=signals.score,
            latency_seconds=elapsed,
            signals={
                "groundedness": signals.groundedness,
                "refused": signals.refused,
                "cited": signals.cited,
                "prompt_tokens": result.prompt_tokens,
                "completion_tokens": result.completion_tokens,
                "cost": cost,
            },
            question=body.question if ctx.settings.database_log_questions else None,
        ),
    )

    citations = [
        Citation(number=n, document_id=documents[n - 1].id, title=documents[n - 1].title)
        for n in cited_numbers(result.text, documents=len(documents))
    ]
    return AnswerResponse(
        request_id=request_id,
        feedback_token=ctx.tokens.issue(request_id, variant),
        answer=result.text,
        citations=citations,
        prompt=VersionRef(name=version.name, version=version.version),
        model=VersionRef(name=model.name, version=model.version),
        track=ctx.settings.track,
        app_version=ctx.settings.version,
        quality=Quality(
            score=signals.score,
            groundedness=signals.groundedness,
            refused=signals.refused,
            cited=signals.cited,
        ),
        usage=Usage(
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            estimated_cost_usd=round(cost, 8),
        ),
        latency_ms=round(elapsed * 1000, 2),
    )


async def _inject_faults(ctx: ServiceContext) -> None:
    """Simulated bad release (APP_FAULT_*): added latency, then a share of failed answers."""
    settings = ctx.settings
    if settings.fault_latency_ms:
        await asyncio.sleep(settings.fault_latency_ms / 1000)
    # Fault injection, not security: the stdlib PRNG is the right tool.
    if settings.fault_error_rate and random.random() < settings.fault_error_rate:  # noqa: S311  # nosec B311
        raise ServiceError(500, "Injected fault (APP_FAULT_ERROR_RATE).", reason="injected_fault")
