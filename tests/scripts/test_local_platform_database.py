"""The local platform's tracks share one database: feedback survives a restart and a deploy."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest

from contract import http
from contract.database import ANSWER_LOG, FEEDBACK
from contract.metrics import FEEDBACK as FEEDBACK_TOTAL
from scripts import local_platform
from scripts.toolkit.metrics.database import read_samples
from scripts.toolkit.platform import lifecycle
from scripts.toolkit.platform.launch import DATABASE_FILE
from scripts.toolkit.platform.state import StateStore
from scripts.toolkit.processes import free_port
from tests.app.db.test_writes import count
from tests.support.polling import poll_until

pytestmark = pytest.mark.integration


def rate(url: str, users: range) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        for n in users:
            answer = client.post(http.ANSWER_PATH, json={"question": "How do I roll back?",
                                                        "user_id": f"user-{n}"})  # fmt: skip
            assert answer.status_code == 200, answer.text
            reference = http.feedback_reference(answer.json())
            rated = client.post(http.FEEDBACK_PATH, json={**reference, "rating": "up"})
            assert rated.status_code == 202, rated.text


def test_feedback_survives_a_restart_and_a_deploy(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    lifecycle.up(state_dir, port=free_port(), prometheus_mode="off")
    database = f"sqlite:///{state_dir.resolve() / DATABASE_FILE}"
    try:
        router = StateStore(state_dir).read().router_url
        rate(router, range(10))
        poll_until(lambda: count(database, FEEDBACK) == 10, timeout=10, message="10 ratings")
        # A crash and a restart: `up` starts what died.
        stable = StateStore(state_dir).read().processes["stable"]
        os.kill(stable.pid, signal.SIGKILL)
        poll_until(lambda: not stable.running(), timeout=5, message="stable gone")
        lifecycle.up(state_dir, port=StateStore(state_dir).read().router_port,
                     prometheus_mode="off")  # fmt: skip
        rate(router, range(10, 20))
        # A deploy: a new instance of stable takes over and the old one drains.
        assert local_platform.main(["deploy", "--track", "stable", "--platform-dir",
                                    str(state_dir), "--env", "APP_VERSION=next"]) == 0  # fmt: skip
        rate(router, range(20, 30))
        poll_until(lambda: count(database, FEEDBACK) == 30, timeout=15, message="30 ratings")
        assert count(database, ANSWER_LOG) == 30
        versions = {labels["app_version"] for name, labels, _ in read_samples(database)
                    if name == FEEDBACK_TOTAL}  # fmt: skip
        assert "next" in versions and len(versions) == 2
    finally:
        lifecycle.down(state_dir)
