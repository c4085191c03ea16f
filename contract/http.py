"""HTTP surface the toolkit relies on: paths, headers, and the fields of `/version`."""

from __future__ import annotations

from typing import Any

# Paths.
ANSWER_PATH = "/v1/answer"
FEEDBACK_PATH = "/v1/feedback"
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
VERSION_PATH = "/version"
METRICS_PATH = "/metrics"
RELOAD_PATH = "/admin/registry/reload"

# Headers.
# Admin features: pinning, forcing a registry reload (a header name, not a secret).
ADMIN_TOKEN_HEADER = "X-Admin-Token"  # noqa: S105  # nosec B105
PIN_PROMPT_VERSION_HEADER = "X-Pin-Prompt-Version"  # serve this prompt version (admin only)
USER_ID_HEADER = "X-User-ID"  # the unit the router assigns when the body carries none

# `/version` fields the toolkit reads.
VERSION_APP_VERSION = "app_version"
VERSION_GIT_SHA = "git_sha"
VERSION_TRACK = "track"
VERSION_REGISTRY = "registry"  # {"digest", "prompts": {name: [{version, status, ...}]}, ...}
VERSION_FIELDS = (VERSION_APP_VERSION, VERSION_GIT_SHA, VERSION_TRACK, VERSION_REGISTRY)

# Fields of a `/v1/answer` response the toolkit reads (dotted paths into the JSON body).
ANSWER_FIELDS = (
    "request_id",  # feedback names the answer by it (or by `feedback_token`, below)
    "answer",
    "citations",  # a list; the smoke test wants one for answerable questions
    "prompt.name",
    "prompt.version",
    "model.name",
    "model.version",
    "quality.score",  # 0..1
    "quality.groundedness",  # 0..1
    "quality.refused",
    "usage.estimated_cost_usd",
)


def feedback_reference(answer: dict[str, Any]) -> dict[str, str]:
    """How a rating names the answer it rates: the signed `feedback_token` when the service
    issues one (any instance then counts the rating for the variant that answered), else the
    `request_id` (counted only by the instance that answered)."""
    token = answer.get("feedback_token")
    return {"feedback_token": token} if token else {"request_id": answer["request_id"]}
