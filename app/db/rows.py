"""What the service writes: one answer-log row per answer request, one row per rating."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from contract import database as names
from contract.metrics import Variant


def unit_hash(salt: str, unit_id: str) -> str:
    """The user as the log keeps it: a digest of the experiment salt and the id, never the id."""
    return hashlib.sha256(f"{salt}:{unit_id}".encode()).hexdigest()[:32]


def answer_row(
    *,
    request_id: str,
    variant: Variant,
    unit: str,
    outcome: str,
    quality_score: float,
    latency_seconds: float,
    signals: dict[str, Any] | None = None,
    question: str | None = None,
) -> dict[str, Any]:
    """An answer-log row; `signals` holds groundedness, refused, cited, tokens and cost."""
    signals = signals or {}
    return {
        "request_id": request_id,
        "created_at": datetime.now(UTC),
        **variant.labels(),
        names.UNIT: unit,
        names.OUTCOME: outcome,
        names.QUALITY: quality_score,
        "groundedness": signals.get("groundedness"),
        "refused": signals.get("refused"),
        "cited": signals.get("cited"),
        names.LATENCY: latency_seconds * 1000,
        "prompt_tokens": signals.get("prompt_tokens"),
        "completion_tokens": signals.get("completion_tokens"),
        names.COST: signals.get("cost"),
        "question": question,
    }


def feedback_row(*, request_id: str, variant: Variant, rating: str) -> dict[str, Any]:
    """A feedback row for the variant that answered."""
    return {
        "request_id": request_id,
        "created_at": datetime.now(UTC),
        **variant.labels(),
        names.RATING: rating,
    }
