"""The service's life as a process: draining on SIGTERM, its embedded model child, refusing to
start on a broken registry, and injected faults."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from scripts.toolkit.processes import free_port
from tests.support.http import assert_error
from tests.support.metrics import scrape
from tests.support.polling import poll_until
from tests.support.registry import write_atomically
from tests.support.service import REPO, StartApp

pytestmark = pytest.mark.integration

QUESTION = "How long are deleted notes kept in the trash?"


def _not_ready(http: httpx.Client) -> httpx.Response | None:
    response = http.get("/readyz")
    return response if response.status_code == 503 else None


def test_sigterm_drains_then_finishes_in_flight_requests(start_app: StartApp) -> None:
    proc = start_app(fault_latency_ms="1500", drain_seconds="1")
    assert proc.process is not None
    responses: list[httpx.Response] = []
    slow = threading.Thread(
        target=lambda: responses.append(
            httpx.post(f"{proc.url}/v1/answer", json={"question": QUESTION}, timeout=10)
        )
    )
    with httpx.Client(base_url=proc.url, timeout=5) as http:
        slow.start()
        # In flight: the slow answer plus the scrape that asks.
        poll_until(
            lambda: scrape(http).value("app_inflight_requests") >= 2,
            timeout=3,
            message="answer in flight",
        )
        proc.signal(signal.SIGTERM)
        signalled = time.monotonic()

        not_ready = poll_until(
            lambda: _not_ready(http), timeout=0.8, message="/readyz reports draining"
        )
        assert not_ready is not None
        assert not_ready.json()["checks"] == {"service": "draining"}
        assert http.get("/healthz").status_code == 200, "alive while draining"
        assert scrape(http).value("app_ready") == 0
        assert time.monotonic() - signalled < 1, "checked within the drain window"

    slow.join(timeout=10)
    assert not slow.is_alive()
    [response] = responses
    assert response.status_code == 200, response.text
    assert response.json()["answer"]

    returncode = proc.process.wait(timeout=5)
    assert returncode in (0, -signal.SIGTERM), proc.log_tail()
    assert time.monotonic() - signalled >= 1, "exited before the drain ended"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{proc.url}/healthz", timeout=2)


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_embedded_provider_child_lives_and_dies_with_the_app(start_app: StartApp) -> None:
    proc = start_app(provider="embedded", provider_base_url="")
    assert proc.pid is not None
    with httpx.Client(base_url=proc.url, timeout=10) as http:
        assert http.get("/version").json()["provider"] == "embedded"
        response = http.post("/v1/answer", json={"question": QUESTION})
        assert response.status_code == 200, response.text
        assert response.json()["citations"]

    [child] = _children(proc.pid)
    cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
    assert b"app.model_server" in cmdline

    proc.stop()
    poll_until(
        lambda: not Path(f"/proc/{child}").exists(), timeout=5, message="model server child gone"
    )


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        pytest.param("status: [production\n", "not valid YAML", id="malformed-yaml"),
        pytest.param(
            "status: production\nmodel: extractive-base@v2026-01\ntemplate: '{question}'\n"
            "traffic_percentage: 150\n",
            "traffic_percentage",
            id="invalid-field",
        ),
    ],
)
def test_refuses_to_start_on_a_broken_registry(
    registry_dir: Path, content: str, complaint: str
) -> None:
    broken = registry_dir / "prompts" / "rag_answer" / "v1.yaml"
    write_atomically(broken, content)
    env = {
        **os.environ,
        "APP_REGISTRY_DIR": str(registry_dir),
        "APP_PORT": str(free_port()),
        "APP_ENV": "test",
        # Should the refusal break, no model server child is started and left behind.
        "APP_PROVIDER": "openai-compatible",
        "APP_PROVIDER_BASE_URL": f"http://127.0.0.1:{free_port()}/v1",
    }
    result = subprocess.run(  # this project's own module, fixed argv
        [sys.executable, "-m", "app"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert str(broken) in errors[0]
    assert complaint in errors[0]
    assert "Traceback" not in result.stderr


def test_injected_faults_fail_answers(start_app: StartApp) -> None:
    proc = start_app(fault_error_rate="1")
    with httpx.Client(base_url=proc.url, timeout=10) as http:
        detail = assert_error(http.post("/v1/answer", json={"question": QUESTION}), 500)
        assert "APP_FAULT_ERROR_RATE" in detail
        metrics = scrape(http)
    v1 = {"prompt": "rag_answer", "prompt_version": "v1"}
    assert metrics.value("app_answers_total", **v1, outcome="error") == 1
    assert metrics.value("app_answers_total", **v1, outcome="answered") == 0
    assert metrics.value("app_request_errors_total", reason="injected_fault") == 1
    assert metrics.value("app_model_call_errors_total") == 0, "the model was never at fault"
