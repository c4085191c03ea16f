"""Signed feedback tokens: any instance can count a rating for the variant that answered.

An answer carries `feedback_token` = `<payload>.<signature>`, both base64url without padding:
the payload is JSON of the request id, the serving variant's labels (`contract.metrics.Variant`)
and the time it was issued; the signature is HMAC-SHA256 of the payload with
`APP_FEEDBACK_SECRET`, the same on every instance. A rating that reaches another replica, or
another track behind the router, is still counted with the labels of the instance that answered.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass

from app.core.config import Settings
from app.core.errors import ServiceError
from contract.metrics import VARIANT_LABELS, Variant
from contract.settings import FEEDBACK_SECRET

log = logging.getLogger(__name__)

# What a token looks like; the OpenAPI schema states it, so clients know before sending.
TOKEN_PATTERN = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"  # noqa: S105  # nosec B105  # a format


@dataclass(frozen=True)
class Rated:
    """What a verified token says: which answer, and who served it."""

    request_id: str
    variant: Variant


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FeedbackTokens:
    """Issues and verifies feedback tokens with one secret; tokens expire after `max_age`."""

    def __init__(self, secret: bytes, *, max_age_seconds: float) -> None:
        self._secret = secret
        self.max_age_seconds = max_age_seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> FeedbackTokens:
        """The configured secret; without one (development only) a random one for this process."""
        if settings.feedback_secret is not None and settings.feedback_secret.get_secret_value():
            secret = settings.feedback_secret.get_secret_value().encode()
        else:
            log.warning(
                "%s is not set: feedback tokens are signed with a random per-process secret, so "
                "a rating only counts on the instance that answered; set one secret on every "
                "instance.",
                FEEDBACK_SECRET,
            )
            secret = secrets.token_bytes(32)
        return cls(secret, max_age_seconds=settings.feedback_token_max_age_seconds)

    def _sign(self, payload: str) -> str:
        return _encode(hmac.new(self._secret, payload.encode("ascii"), hashlib.sha256).digest())

    def issue(self, request_id: str, variant: Variant, *, now: float | None = None) -> str:
        """A token for the answer `request_id` served by `variant`."""
        claims = {
            "request_id": request_id,
            **variant.labels(),
            "issued_at": int(now or time.time()),
        }
        payload = _encode(json.dumps(claims, separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload)}"

    def verify(self, token: str, *, now: float | None = None) -> Rated:
        """The answer and variant a token names; ServiceError 403 if forged or expired."""
        payload, _, signature = token.partition(".")
        if not hmac.compare_digest(self._sign(payload), signature):
            raise ServiceError(
                403,
                "The feedback_token's signature is not valid; send the token of the answer as is.",
                reason="bad_feedback_token",
            )
        try:
            claims = json.loads(_decode(payload))
            rated = Rated(
                request_id=str(claims["request_id"]),
                variant=Variant(**{name: str(claims[name]) for name in VARIANT_LABELS}),
            )
            issued_at = float(claims["issued_at"])
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            # Signed by us but unreadable: only a different build with the same secret does this.
            raise ServiceError(
                400, "The feedback_token's content is not readable.", reason="bad_feedback_token"
            ) from exc
        if (now or time.time()) - issued_at > self.max_age_seconds:
            raise ServiceError(
                403,
                "The feedback_token has expired; rate answers sooner.",
                reason="expired_feedback_token",
            )
        return rated
