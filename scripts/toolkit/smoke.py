"""Post-deploy smoke test: health, readiness, version, and a few golden answers."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from contract.http import (
    ADMIN_TOKEN_HEADER,
    ANSWER_PATH,
    HEALTH_PATH,
    PIN_PROMPT_VERSION_HEADER,
    READY_PATH,
    VERSION_APP_VERSION,
    VERSION_PATH,
)
from scripts.toolkit.cli import EXIT_FAILED, ToolkitError
from scripts.toolkit.evaluation.dataset import GoldenCase, load_dataset


@dataclass(frozen=True)
class Check:
    """One check: its name, whether it passed, and what was seen."""

    check: str
    ok: bool
    detail: str


def _cases(dataset: str | Path, count: int) -> list[GoldenCase]:
    cases = load_dataset(dataset).cases
    answerable = [c for c in cases if c.answerable]
    return answerable[: max(count - 1, 1)] + [c for c in cases if not c.answerable][:1]


def smoke_test(
    url: str,
    *,
    expect_version: str | None,
    prompt_version: str | None,
    admin_token: str | None,
    dataset: str | Path,
    questions: int,
    max_latency: float,
    timeout: float,
) -> list[Check]:
    """Every check, in order; an unreachable service is a ToolkitError (exit 1)."""
    headers = {}
    if prompt_version:
        if not admin_token:
            raise ToolkitError("--prompt-version needs --admin-token (or ROLLOUT_ADMIN_TOKEN).")
        headers = {PIN_PROMPT_VERSION_HEADER: prompt_version, ADMIN_TOKEN_HEADER: admin_token}
    cases = _cases(dataset, questions)
    checks: list[Check] = []
    with httpx.Client(base_url=url, timeout=timeout) as client:
        try:
            health = client.get(HEALTH_PATH)
        except httpx.TransportError as exc:
            raise ToolkitError(f"cannot reach {url}: {exc}.", exit_code=EXIT_FAILED) from exc
        checks.append(Check("healthz", health.status_code == 200, f"HTTP {health.status_code}"))
        ready = client.get(READY_PATH)
        checks.append(Check("readyz", ready.status_code == 200, ready.text[:200]))
        version = client.get(VERSION_PATH).json().get(VERSION_APP_VERSION)
        expected = f", expected {expect_version}" if expect_version else ""
        ok = expect_version is None or version == expect_version
        checks.append(Check("version", ok, f"app_version {version}{expected}"))
        checks += [_ask(client, case, headers, max_latency) for case in cases]
    return checks


def _ask(
    client: httpx.Client, case: GoldenCase, headers: dict[str, str], max_latency: float
) -> Check:
    started = time.perf_counter()
    response = client.post(
        ANSWER_PATH, json={"question": case.question, "user_id": "smoke-test"}, headers=headers
    )
    elapsed = time.perf_counter() - started
    name = f"answer {case.id}"
    if response.status_code != 200:
        return Check(name, False, f"HTTP {response.status_code}: {response.text[:200]}")
    body = response.json()
    refused = body["quality"]["refused"]
    good = bool(body["answer"]) and elapsed <= max_latency
    if case.answerable:
        good = good and bool(body["citations"]) and not refused
    detail = (
        f"{elapsed * 1000:.0f} ms, {body['prompt']['version']}, "
        f"refused={refused}, citations={len(body['citations'])}"
    )
    return Check(name, good, detail)
