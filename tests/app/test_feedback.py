"""Unit tests of app/feedback.py: feedback tokens are signed, expire, and carry the variant."""

from __future__ import annotations

import pytest

from app.core.errors import ServiceError
from app.feedback import FeedbackTokens
from contract.metrics import Variant

VARIANT = Variant("canary", "abc123", "rag_answer", "v2", "extractive-base", "v2026-01")
REQUEST_ID = "0" * 32


def test_a_token_names_the_answer_and_the_variant_that_served_it() -> None:
    tokens = FeedbackTokens(b"secret", max_age_seconds=60)
    rated = tokens.verify(tokens.issue(REQUEST_ID, VARIANT, now=1000.0), now=1030.0)
    assert rated.request_id == REQUEST_ID
    assert rated.variant == VARIANT


def test_an_expired_token_is_refused() -> None:
    tokens = FeedbackTokens(b"secret", max_age_seconds=60)
    token = tokens.issue(REQUEST_ID, VARIANT, now=1000.0)
    with pytest.raises(ServiceError, match="expired") as caught:
        tokens.verify(token, now=1061.0)
    assert caught.value.status_code == 403


@pytest.mark.parametrize("tamper", ["payload", "signature", "secret"])
def test_a_changed_token_or_another_secret_is_refused(tamper: str) -> None:
    tokens = FeedbackTokens(b"secret", max_age_seconds=60)
    payload, signature = tokens.issue(REQUEST_ID, VARIANT, now=1000.0).split(".")
    token = {
        "payload": f"{payload[:-1]}A.{signature}",
        "signature": f"{payload}.{signature[::-1]}",
        "secret": f"{payload}.{signature}",
    }[tamper]
    verifier = FeedbackTokens(b"other" if tamper == "secret" else b"secret", max_age_seconds=60)
    with pytest.raises(ServiceError, match="signature") as caught:
        verifier.verify(token, now=1000.0)
    assert caught.value.status_code == 403
