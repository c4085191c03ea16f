"""The service over HTTP as clients, operators and Prometheus see it, from real processes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from contract.assignment import in_canary
from contract.metrics import PROCESS_START
from contract.registry.loader import load_registry
from scripts.toolkit.processes import ManagedProcess
from tests.support.http import assert_error
from tests.support.metrics import Metrics, scrape
from tests.support.polling import poll_until
from tests.support.registry import (
    add_prompt,
    example_prompt,
    golden_rows,
    set_provider_model,
    write_atomically,
)
from tests.support.service import ADMIN_TOKEN, REPO, StartApp

pytestmark = pytest.mark.integration

KB_IDS = {path.stem for path in (REPO / "app" / "knowledge" / "kb").glob("*.md")}
QUESTION = "How much is the Team plan per seat when billed annually?"
MAX_BODY = 2048
ADMIN = {"X-Admin-Token": ADMIN_TOKEN}


def pinned(version: str, token: str | None = ADMIN_TOKEN) -> dict[str, str]:
    """Headers that pin a request to a prompt version (with an admin token unless None)."""
    headers = {"X-Pin-Prompt-Version": version}
    if token is not None:
        headers["X-Admin-Token"] = token
    return headers


def golden_questions(count: int) -> list[str]:
    """The first `count` answerable questions of the golden dataset."""
    questions = [row["question"] for row in golden_rows() if row["answerable"]]
    assert len(questions) >= count
    return questions[:count]


@pytest.fixture(scope="module")
def app(start_module_app: StartApp) -> ManagedProcess:
    """One app shared by the read-mostly tests: canary track, a known version and a small body
    limit. Tests that count on it compare metrics before and after their own requests."""
    return start_module_app(
        track="canary", version="abc123", git_sha="0123456789abcdef", max_body_bytes=str(MAX_BODY)
    )


@pytest.fixture
def client(app: ManagedProcess) -> Iterator[httpx.Client]:
    """An HTTP client for the shared app."""
    with httpx.Client(base_url=app.url, timeout=10) as http:
        yield http


@pytest.fixture(scope="module")
def canary_app(
    start_module_app: StartApp, tmp_path_factory: pytest.TempPathFactory
) -> ManagedProcess:
    """An app whose registry has examples/prompts/rag_answer/v2.yaml as a 50% canary."""
    registry = tmp_path_factory.mktemp("canary") / "registry"
    shutil.copytree(REPO / "registry", registry)
    add_prompt(registry, "rag_answer", "v2", status="canary", traffic_percentage=50)
    return start_module_app(registry_dir=str(registry))


# --- answers, identity and health -----------------------------------------------------------


def test_answer_from_bundled_knowledge_base(client: httpx.Client) -> None:
    response = client.post("/v1/answer", json={"question": QUESTION, "user_id": "user-1"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "$8" in body["answer"]
    assert body["citations"], body["answer"]
    for citation in body["citations"]:
        assert citation["document_id"] in KB_IDS
        assert f"[{citation['number']}]" in body["answer"]
    assert re.fullmatch(r"[0-9a-f]{32}", body["request_id"])
    assert response.headers["X-Request-ID"] == body["request_id"]
    assert body["prompt"] == {"name": "rag_answer", "version": "v1"}
    assert body["model"] == {"name": "extractive-base", "version": "v2026-01"}
    assert body["track"] == "canary"
    assert body["app_version"] == "abc123"
    assert 0 <= body["quality"]["score"] <= 1
    assert body["usage"]["prompt_tokens"] > 0
    assert body["usage"]["estimated_cost_usd"] > 0


def readme_answer_example() -> dict[str, Any]:
    """The body of the README's headline `curl .../v1/answer -d '...'` example."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(r"/v1/answer -H 'content-type: application/json' \\\n\s*-d '([^']+)'", readme)
    assert match, "README.md lost its headline /v1/answer example"
    body: dict[str, Any] = json.loads(match.group(1))
    return body


def test_readme_example_answers_with_a_citation_of_the_refund_policy(
    client: httpx.Client,
) -> None:
    example = readme_answer_example()
    assert example == {"question": "How long do I have to ask for a refund?", "user_id": "u-42"}
    response = client.post("/v1/answer", json=example)
    assert response.status_code == 200, response.text
    body = response.json()
    assert not body["quality"]["refused"], body["answer"]
    assert "30 days" in body["answer"]
    assert [c["document_id"] for c in body["citations"]] == ["refund-policy"]
    assert body["quality"]["score"] > 0.5


def test_version_reports_build_and_loaded_registry(client: httpx.Client) -> None:
    body = client.get("/version").json()
    assert body["app_version"] == "abc123"
    assert body["git_sha"] == "0123456789abcdef"
    assert body["track"] == "canary"
    assert body["registry_error"] is None
    [v1] = body["registry"]["prompts"]["rag_answer"]
    assert v1["version"] == "v1"
    assert v1["status"] == "production"
    assert v1["model"] == "extractive-base@v2026-01"
    assert "extractive-base@v2026-01" in body["registry"]["models"]


def test_health_and_readiness(client: httpx.Client, canary_app: ManagedProcess) -> None:
    healthz = client.get("/healthz")
    assert healthz.status_code == 200
    assert healthz.json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    # The database is reported beside the model checks (never decisive: app/context.py).
    assert ready.json()["checks"] == {"rag_answer@v1": "ok", "database": "ok"}
    # One check per active version: the canary is probed too.
    with_canary = httpx.get(f"{canary_app.url}/readyz", timeout=10)
    assert with_canary.status_code == 200
    assert with_canary.json()["checks"] == {
        "rag_answer@v1": "ok",
        "rag_answer@v2": "ok",
        "database": "ok",
    }


# --- metrics ---------------------------------------------------------------------------------


def test_metrics_carry_identity_and_count_answers(client: httpx.Client) -> None:
    before = scrape(client)
    assert client.post("/v1/answer", json={"question": QUESTION}).status_code == 200
    after = scrape(client)

    assert after.value(PROCESS_START) > 0  # unlabelled: one process, one start
    for sample in (s for s in after.samples if not s.name.startswith("process_")):
        assert sample.labels.get("track") == "canary", sample
        assert sample.labels.get("app_version") == "abc123", sample
    v1 = {"prompt": "rag_answer", "prompt_version": "v1"}
    answered = "app_answers_total"
    assert after.value(answered, **v1, outcome="answered") == (
        before.value(answered, **v1, outcome="answered") + 1
    )
    assert after.value("app_quality_score_count", **v1) == (
        before.value("app_quality_score_count", **v1) + 1
    )
    assert after.select("app_quality_score_bucket", **v1, le="+Inf")
    assert after.value("app_answer_cost_usd_sum", **v1) > before.value(
        "app_answer_cost_usd_sum", **v1
    )
    for kind in ("prompt", "completion"):
        assert after.value("app_model_tokens_total", **v1, kind=kind) > before.value(
            "app_model_tokens_total", **v1, kind=kind
        )
    assert after.value("app_build_info", git_sha="0123456789abcdef") == 1
    assert after.value("app_http_requests_total", route="/v1/answer", status_code="200") >= 1
    assert after.select("app_http_request_duration_seconds_bucket", route="/v1/answer")


def test_metrics_pass_promtool(client: httpx.Client) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed")
    # Traffic of every kind first, so each metric family has series to check.
    answer = client.post("/v1/answer", json={"question": QUESTION}).json()
    client.post("/v1/feedback", json={"request_id": answer["request_id"], "rating": "down"})
    client.post("/v1/answer", json={"question": ""})
    text = client.get("/metrics").text
    result = subprocess.run(  # fixed argv, the metrics text on stdin
        [promtool, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == ""


# --- bad input -------------------------------------------------------------------------------


def _chunks() -> Iterator[bytes]:
    # No length up front: httpx sends it chunked, and the limit applies while reading.
    yield b'{"question": "'
    for _ in range(5):
        yield b"x" * 1000
    yield b'"}'


BadRequest = Callable[[], dict[str, Any]]
BAD_INPUT: list[tuple[str, str, BadRequest, int, str]] = [
    (
        "malformed-json",
        "/v1/answer",
        lambda: {"content": b'{"question": ', "headers": {"content-type": "application/json"}},
        400,
        "invalid_json",
    ),
    ("missing-question", "/v1/answer", lambda: {"json": {}}, 422, "invalid_request"),
    (
        "question-too-long",
        "/v1/answer",
        lambda: {"json": {"question": "x" * 2001}},
        422,
        "invalid_request",
    ),
    (
        "unknown-field",
        "/v1/answer",
        lambda: {"json": {"question": QUESTION, "colour": "blue"}},
        422,
        "invalid_request",
    ),
    (
        "body-too-large",
        "/v1/answer",
        lambda: {"json": {"question": "x" * MAX_BODY}},
        413,
        "body_too_large",
    ),
    (
        "chunked-body-too-large",
        "/v1/answer",
        lambda: {"content": _chunks(), "headers": {"content-type": "application/json"}},
        413,
        "body_too_large",
    ),
    (
        "unknown-prompt",
        "/v1/answer",
        lambda: {"json": {"question": QUESTION, "prompt": "no_such_prompt"}},
        404,
        "unknown_prompt",
    ),
    (
        "pin-without-token",
        "/v1/answer",
        lambda: {"json": {"question": QUESTION}, "headers": pinned("v1", token=None)},
        403,
        "forbidden",
    ),
    (
        "pin-with-wrong-token",
        "/v1/answer",
        lambda: {"json": {"question": QUESTION}, "headers": pinned("v1", token="wrong-token")},
        403,
        "forbidden",
    ),
    (
        "pin-unknown-version",
        "/v1/answer",
        lambda: {"json": {"question": QUESTION}, "headers": pinned("v99")},
        404,
        "unknown_version",
    ),
    (
        "feedback-unknown-request",
        "/v1/feedback",
        lambda: {"json": {"request_id": "0" * 32, "rating": "up"}},
        404,
        "unknown_request_id",
    ),
    (
        "feedback-bad-rating",
        "/v1/feedback",
        lambda: {"json": {"request_id": "0" * 32, "rating": "meh"}},
        422,
        "invalid_request",
    ),
]


@pytest.mark.parametrize(
    ("path", "request_options", "status", "reason"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_INPUT],
)
def test_bad_input_is_refused_with_one_sentence(
    client: httpx.Client, path: str, request_options: BadRequest, status: int, reason: str
) -> None:
    counted = "app_request_errors_total"
    before = scrape(client).value(counted, reason=reason)
    response = client.post(path, **request_options())
    assert_error(response, status)
    assert scrape(client).value(counted, reason=reason) == before + 1


def test_body_limit_applies_to_both_framings(client: httpx.Client) -> None:
    """The 413 cases really exercise both paths: a declared length and a chunked body."""
    sized = client.post("/v1/answer", json={"question": "x" * MAX_BODY})
    assert int(sized.request.headers["content-length"]) > MAX_BODY
    chunked = client.post(
        "/v1/answer", content=_chunks(), headers={"content-type": "application/json"}
    )
    assert chunked.request.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in chunked.request.headers
    for response in (sized, chunked):
        assert assert_error(response, 413) == f"Request body is larger than {MAX_BODY} bytes."
    # Just under the limit is served normally.
    small = client.post("/v1/answer", json={"question": "x" * 2000})
    assert len(small.request.content) < MAX_BODY
    assert small.status_code == 200


# --- provider failures -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider_model", "status", "kind"),
    [("slow", 504, "timeout"), ("garbage", 502, "bad_response"), ("fail", 503, "unavailable")],
)
def test_provider_failures_map_to_gateway_errors(
    start_app: StartApp,
    registry_dir: Path,
    broken_provider: ManagedProcess,
    provider_model: str,
    status: int,
    kind: str,
) -> None:
    set_provider_model(registry_dir, provider_model)
    proc = start_app(
        registry_dir=str(registry_dir),
        provider_base_url=f"{broken_provider.url}/v1",
        provider_timeout_seconds="0.5",
        provider_max_retries="0",
        wait=None,
    )
    proc.wait_http("/healthz")
    with httpx.Client(base_url=proc.url, timeout=10) as http:
        detail = assert_error(http.post("/v1/answer", json={"question": QUESTION}), status)
        assert "model provider" in detail

        metrics = scrape(http)
        v1 = {"prompt_version": "v1", "model": "extractive-base"}
        assert metrics.value("app_model_call_errors_total", **v1, reason=kind) == 1
        assert metrics.value("app_request_errors_total", reason=f"provider_{kind}") == 1
        assert metrics.value("app_answers_total", **v1, outcome="error") == 1

        ready = http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["status"] == "not ready"
        assert ready.json()["checks"] == {"rag_answer@v1": detail, "database": "ok"}


# --- variants: sticky assignment, pinning, feedback ------------------------------------------


def _answer(http: httpx.Client, question: str, **fields: str) -> dict[str, Any]:
    response = http.post("/v1/answer", json={"question": question, **fields})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_sticky_assignment_follows_the_contract(canary_app: ManagedProcess) -> None:
    canary = load_registry(Path(canary_app.env["APP_REGISTRY_DIR"])).prompts["rag_answer"].canary
    assert canary is not None
    assert canary.traffic_percentage == 50
    with httpx.Client(base_url=canary_app.url, timeout=10) as http:
        for user in ("alice", "bob", "carol"):
            versions = {
                _answer(http, "Is there a free trial?", user_id=user)["prompt"]["version"]
                for _ in range(5)
            }
            assert len(versions) == 1, f"{user} moved between {versions}"

        served: dict[str, str] = {}
        for n in range(400):
            user = f"user-{n}"
            served[user] = _answer(http, "Is there a free trial?", user_id=user)["prompt"][
                "version"
            ]
    shares = Counter(served.values())
    assert set(shares) == {"v1", "v2"}
    assert 0.35 <= shares["v2"] / len(served) <= 0.65, shares
    for user, version in served.items():
        expected = "v2" if in_canary(user, canary.salt, canary.traffic_percentage) else "v1"
        assert version == expected, user


def test_admin_can_pin_a_version(canary_app: ManagedProcess) -> None:
    users = [f"pinned-user-{n}" for n in range(20)]
    canary = load_registry(Path(canary_app.env["APP_REGISTRY_DIR"])).prompts["rag_answer"].canary
    assert canary is not None
    # Without the pin some of these users would be served by v1.
    assert not all(in_canary(u, canary.salt, canary.traffic_percentage) for u in users)
    with httpx.Client(base_url=canary_app.url, timeout=10, headers=pinned("v2")) as http:
        versions = {_answer(http, QUESTION, user_id=u)["prompt"]["version"] for u in users}
    assert versions == {"v2"}


def test_pinning_is_refused_without_an_admin_token_configured(start_app: StartApp) -> None:
    proc = start_app(admin_token="")
    with httpx.Client(base_url=proc.url, timeout=10) as http:
        for headers in (pinned("v1", token=None), pinned("v1"), pinned("v1", token="")):
            detail = assert_error(
                http.post("/v1/answer", json={"question": QUESTION}, headers=headers), 403
            )
            assert "APP_ADMIN_TOKEN" in detail
        assert scrape(http).value("app_request_errors_total", reason="admin_disabled") == 3
        # Unpinned requests are still served.
        assert _answer(http, QUESTION)["prompt"]["version"] == "v1"


def test_feedback_is_counted_for_the_variant(client: httpx.Client) -> None:
    up = {"prompt": "rag_answer", "prompt_version": "v1", "rating": "up"}
    before = scrape(client).value("app_feedback_total", **up)
    answer = _answer(client, QUESTION, user_id="feedback-user")
    response = client.post(
        "/v1/feedback", json={"request_id": answer["request_id"], "rating": "up"}
    )
    assert response.status_code == 202, response.text
    assert response.json() == {
        "status": "recorded",
        "prompt": {"name": "rag_answer", "version": "v1"},
        "track": "canary",
        "app_version": "abc123",
    }
    assert scrape(client).value("app_feedback_total", **up) == before + 1
    # The same answer rated again (by id or by token) is refused, not counted twice.
    again = {"feedback_token": answer["feedback_token"], "rating": "up"}
    assert_error(client.post("/v1/feedback", json=again), 409)
    assert scrape(client).value("app_feedback_total", **up) == before + 1


def test_feedback_token_counts_on_another_instance_for_the_answering_one(
    start_app: StartApp,
) -> None:
    # Two replicas share the secret but not their memory: the rating reaches the one that did
    # not answer and is still counted for the canary instance that did.
    secret = "feedback-secret-0123456789"
    answering = start_app(track="canary", version="new", feedback_secret=secret)
    receiving = start_app(track="stable", version="old", feedback_secret=secret)
    with httpx.Client(base_url=answering.url, timeout=10) as http:
        answer = _answer(http, QUESTION, user_id="token-user")
    with httpx.Client(base_url=receiving.url, timeout=10) as http:
        by_id = {"request_id": answer["request_id"], "rating": "down"}
        assert "feedback_token" in assert_error(http.post("/v1/feedback", json=by_id), 404)
        rating = {"feedback_token": answer["feedback_token"], "rating": "down"}
        response = http.post("/v1/feedback", json=rating)
        assert response.status_code == 202, response.text
        assert response.json()["track"] == "canary"
        metrics = scrape(http)
        forged = {**rating, "feedback_token": answer["feedback_token"][:-2] + "xx"}
        assert "signature" in assert_error(http.post("/v1/feedback", json=forged), 403)
    assert (
        metrics.value("app_feedback_total", track="canary", app_version="new", rating="down") == 1
    )
    assert metrics.value("app_feedback_total", track="stable") == 0


def test_feedback_token_of_another_secret_is_refused(start_app: StartApp) -> None:
    answering = start_app(feedback_secret="one-secret-0123456789")
    receiving = start_app(feedback_secret="another-secret-0123456789")
    with httpx.Client(base_url=answering.url, timeout=10) as http:
        token = _answer(http, QUESTION)["feedback_token"]
    with httpx.Client(base_url=receiving.url, timeout=10) as http:
        response = http.post("/v1/feedback", json={"feedback_token": token, "rating": "up"})
        assert_error(response, 403)


# --- registry hot reload ---------------------------------------------------------------------


def _version(http: httpx.Client) -> dict[str, Any]:
    body: dict[str, Any] = http.get("/version").json()
    return body


def _traffic(http: httpx.Client, version: str) -> float | None:
    """The traffic percentage of a loaded rag_answer version, None when it is not loaded."""
    for row in _version(http)["registry"]["prompts"]["rag_answer"]:
        if row["version"] == version:
            return float(row["traffic_percentage"])
    return None


def _reloads(http: httpx.Client, outcome: str) -> float:
    return scrape(http).value("app_registry_reloads_total", outcome=outcome)


def test_registry_hot_reload_keeps_last_good(start_app: StartApp) -> None:
    proc = start_app()
    canary_file = Path(proc.env["APP_REGISTRY_DIR"]) / "prompts" / "rag_answer" / "v2.yaml"
    with httpx.Client(base_url=proc.url, timeout=10) as http:
        assert _traffic(http, "v2") is None
        assert _traffic(http, "v1") == 100
        # Both outcomes exist from start-up, so `increase()` sees the first rejection.
        for outcome in ("reloaded", "rejected"):
            samples = scrape(http).select("app_registry_reloads_total", outcome=outcome)
            assert [s.value for s in samples] == [0.0], outcome

        good = example_prompt("rag_answer", "v2", status="canary", traffic_percentage=20)
        write_atomically(canary_file, good)
        poll_until(lambda: _traffic(http, "v2") == 20, timeout=3, message="canary loaded")
        assert _reloads(http, "reloaded") >= 1
        assert _traffic(http, "v1") == 80, "production serves the users the canary does not"

        write_atomically(canary_file, "status: canary\ntraffic_percentage: [20\n")
        error = poll_until(
            lambda: _version(http)["registry_error"], timeout=3, message="error reported"
        )
        assert str(canary_file) in error
        assert _traffic(http, "v2") == 20, "the last good registry keeps serving"
        assert _answer(http, QUESTION, user_id="during-error")["prompt"]["version"] in {"v1", "v2"}
        assert _reloads(http, "rejected") >= 1

        reloaded = _reloads(http, "reloaded")
        write_atomically(
            canary_file, example_prompt("rag_answer", "v2", status="canary", traffic_percentage=30)
        )
        poll_until(lambda: _traffic(http, "v2") == 30, timeout=3, message="fixed canary loaded")
        assert _version(http)["registry_error"] is None
        assert _reloads(http, "reloaded") == reloaded + 1

        # Reverting a refused change to what is serving also clears the reported error.
        serving = canary_file.read_text()
        write_atomically(canary_file, "not: [valid\n")
        poll_until(lambda: _version(http)["registry_error"], timeout=3, message="error reported")
        write_atomically(canary_file, serving)
        poll_until(
            lambda: _version(http)["registry_error"] is None, timeout=3, message="error cleared"
        )
        assert _traffic(http, "v2") == 30


def test_admin_registry_reload(start_app: StartApp) -> None:
    proc = start_app(registry_reload_seconds="0")  # no watcher: only the endpoint reloads
    canary_file = Path(proc.env["APP_REGISTRY_DIR"]) / "prompts" / "rag_answer" / "v2.yaml"
    write_atomically(
        canary_file, example_prompt("rag_answer", "v2", status="canary", traffic_percentage=10)
    )
    with httpx.Client(base_url=proc.url, timeout=10) as http:
        assert_error(http.post("/admin/registry/reload"), 403)
        assert_error(http.post("/admin/registry/reload", headers={"X-Admin-Token": "nope"}), 403)
        assert _traffic(http, "v2") is None

        response = http.post("/admin/registry/reload", headers=ADMIN)
        assert response.status_code == 200, response.text
        assert response.json()["outcome"] == "reloaded"
        assert _traffic(http, "v2") == 10

        write_atomically(canary_file, "status: [\n")
        refused = http.post("/admin/registry/reload", headers=ADMIN)
        assert refused.status_code == 409
        assert str(canary_file) in refused.json()["error"]
        assert _traffic(http, "v2") == 10


# --- online quality signal -------------------------------------------------------------------


def test_quality_score_separates_a_bad_prompt(
    start_app: StartApp, registry_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_prompt(registry_dir, "rag_answer", "v2-no-context", status="canary", traffic_percentage=50)
    proc = start_app(registry_dir=str(registry_dir))
    questions = golden_questions(30)
    scores: dict[str, list[float]] = {"v1": [], "v2-no-context": []}
    with httpx.Client(base_url=proc.url, timeout=10) as http:
        for version, values in scores.items():
            for question in questions:
                response = http.post(
                    "/v1/answer", json={"question": question}, headers=pinned(version)
                )
                assert response.status_code == 200, response.text
                assert response.json()["prompt"]["version"] == version
                values.append(response.json()["quality"]["score"])
        metrics: Metrics = scrape(http)

    means = {version: sum(values) / len(values) for version, values in scores.items()}
    with capsys.disabled():
        print(
            f"\nmean online quality over {len(questions)} golden questions: "
            + ", ".join(f"{v} {m:.3f}" for v, m in means.items())
        )
    assert means["v1"] - means["v2-no-context"] >= 0.3
    for version, mean in means.items():
        count = metrics.value("app_quality_score_count", prompt_version=version)
        total = metrics.value("app_quality_score_sum", prompt_version=version)
        assert count == len(questions)
        assert total / count == pytest.approx(mean, abs=1e-6)


# --- the OpenAPI document tells the truth ---------------------------------------------------


def test_openapi_documents_errors_and_the_metrics_media_type(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    answer = spec["paths"]["/v1/answer"]["post"]["responses"]
    for code in ("400", "403", "404", "413", "422", "502", "503", "504"):
        ref = answer[code]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/ErrorBody"), code
    error = spec["components"]["schemas"]["ErrorBody"]
    assert error["properties"]["detail"]["type"] == "string"
    metrics = spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]
    token = spec["components"]["schemas"]["AnswerResponse"]["properties"]["feedback_token"]
    assert "HMAC" in token["description"]
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")


def test_method_not_allowed_names_the_allowed_methods(client: httpx.Client) -> None:
    response = client.get("/v1/answer")
    assert_error(response, 405)
    assert response.headers["allow"] == "POST"


def test_whitespace_only_document_text_is_accepted_as_the_schema_allows(
    client: httpx.Client,
) -> None:
    body = {"question": QUESTION, "documents": [{"id": "blank", "text": "   "}]}
    response = client.post("/v1/answer", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["quality"]["refused"]
