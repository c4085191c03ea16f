"""Why a pod is not ready, read from its status as the Pod API documents it."""

from __future__ import annotations

from typing import Any

import pytest

from scripts.toolkit.traffic.kube.workloads import pod_reason, tag


def pod(*containers: dict[str, Any], ready: str = "False") -> dict[str, Any]:
    return {
        "metadata": {"name": "ai-service-canary-7d9-abcde"},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": ready, "reason": "ContainersNotReady"}],
            "containerStatuses": list(containers),
        },
    }


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (
            {"name": "app", "ready": False, "state": {"waiting": {"reason": "ImagePullBackOff"}}},
            "pod ai-service-canary-7d9-abcde: ImagePullBackOff",
        ),
        (
            {
                "name": "app",
                "ready": False,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}},
            },
            "pod ai-service-canary-7d9-abcde: CrashLoopBackOff (back-off 10s)",
        ),
        (
            {"name": "app", "ready": False, "state": {"running": {"startedAt": "2026-01-01"}}},
            "pod ai-service-canary-7d9-abcde: app runs but its readiness probe fails",
        ),
        (
            {"name": "app", "ready": False, "state": {"terminated": {"reason": "OOMKilled"}}},
            "pod ai-service-canary-7d9-abcde: app OOMKilled",
        ),
    ],
)
def test_a_pod_that_is_not_ready_is_named_with_its_reason(
    status: dict[str, Any], expected: str
) -> None:
    assert pod_reason(pod(status)) == expected


def test_a_ready_pod_has_no_reason() -> None:
    running = {"name": "app", "ready": True, "state": {"running": {}}}
    assert pod_reason(pod(running, ready="True")) is None


def test_an_images_tag_is_its_version() -> None:
    assert tag("ghcr.io/org/ai-service:0123abc") == "0123abc"
    assert tag("registry:5000/ai-service:v1@sha256:abc") == "v1"
    assert tag("ai-service") == "ai-service"
