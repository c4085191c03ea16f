"""`python -m scripts.evaluate_quality`: scoring, intervals, the gate, and real services."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from scipy import stats as scipy_stats

from contract.registry.loader import load_registry
from scripts.evaluate_quality import main
from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.evaluation.arms import ArmService, Asker
from scripts.toolkit.evaluation.dataset import GoldenCase, load_dataset
from scripts.toolkit.evaluation.gate import judge_score, mean_interval, paired_interval, t_quantile
from scripts.toolkit.evaluation.scoring import Answer, refusal_correctness, score_case, token_f1
from scripts.toolkit.policy import EvalMetricPolicy
from scripts.toolkit.processes import ManagedProcess, free_port
from tests.support.policy import EXAMPLE, write
from tests.support.registry import add_prompt, example_prompt, set_provider_model, write_atomically
from tests.support.service import ADMIN_TOKEN, REPO, StartApp

GOLDEN = REPO / "eval" / "golden.jsonl"
GOLDEN_CASES = sum(1 for line in GOLDEN.read_text().splitlines() if line.strip())
QUALITY = ("correctness", "required_facts", "groundedness", "refusal_correctness")
# The concise example v2 with two sentences and a lower refusal threshold: more complete and
# better grounded than v1 on the golden set, so a candidate that really is better.


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No ROLLOUT_* setting leaks in from the caller; the step summary goes to a scratch file;
    the policy is the example one, whose thresholds these tests were written for."""
    for name in [n for n in os.environ if n.startswith("ROLLOUT_")]:
        monkeypatch.delenv(name)
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("ROLLOUT_POLICY", str(write(tmp_path, EXAMPLE)))
    return summary


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    """Call main in-process with --output json; returns the exit code, envelope and stderr."""
    if "--policy" not in args:
        args = (*args, "--policy", os.environ["ROLLOUT_POLICY"])
    code = main([*args, "--output", "json"])
    captured = capsys.readouterr()
    envelope = json.loads(captured.out)
    assert envelope["exit_code"] == code
    assert envelope["schema_version"] == 1
    return code, envelope, captured.err


def summary_text(tmp_path: Path) -> str:
    """What the run appended to $GITHUB_STEP_SUMMARY."""
    return (tmp_path / "summary.md").read_text(encoding="utf-8")


# --- scoring ---------------------------------------------------------------------------------


def test_token_f1_matches_the_squad_definition() -> None:
    # 4 shared tokens (team, plan, costs, 8); 5 predicted, 7 in the reference.
    f1 = token_f1("The Team plan costs $8 yearly.", "Team plan costs $8 per user monthly")
    precision, recall = 4 / 5, 4 / 7
    assert f1 == pytest.approx(2 * precision * recall / (precision + recall))
    assert token_f1("An answer.", "the ANSWER") == 1.0  # case, punctuation, articles
    assert token_f1("99.9% uptime", "99.95% uptime") == 0.5  # numbers stay whole
    assert token_f1("nothing shared", "different words") == 0.0
    assert token_f1("", "") == 1.0


def test_citation_markers_do_not_count_against_correctness() -> None:
    case = GoldenCase(
        id="c", question="q", answerable=True, reference_answer="Team costs $8.", category="x"
    )
    cited = score_case(case, Answer(text="Team costs $8. [2] [13]", cost_usd=0.0))
    assert cited["correctness"] == 1.0


def test_required_facts_are_found_case_and_spacing_insensitively() -> None:
    case = GoldenCase(
        id="c",
        question="q",
        answerable=True,
        reference_answer="r",
        required_facts=("AES-256", "90  days", "Enterprise"),
    )
    scores = score_case(case, Answer(text="Encrypted with aes-256 for 90 days.", cost_usd=0.0))
    assert scores["required_facts"] == pytest.approx(2 / 3)


def test_unanswerable_cases_score_the_refusal_only() -> None:
    case = GoldenCase(id="u", question="q", answerable=False, reference_answer="I don't know.")
    refused = score_case(case, Answer(text="I don't know.", refused=True, cost_usd=1e-4))
    answered = score_case(case, Answer(text="Sure, it does.", refused=False, cost_usd=1e-4))
    assert refused["correctness"] == refused["refusal_correctness"] == 1.0
    assert answered["correctness"] == answered["refusal_correctness"] == 0.0
    assert refused["required_facts"] is None and refused["groundedness"] is None
    assert refused["cost_per_answer"] == 1e-4


@pytest.mark.parametrize(
    ("answerable", "refused", "expected"),
    [(True, False, 1.0), (True, True, 0.0), (False, True, 1.0), (False, False, 0.0)],
)
def test_refusal_correctness(answerable: bool, refused: bool, expected: float) -> None:
    assert refusal_correctness(answerable=answerable, refused=refused) == expected


def test_a_failed_request_scores_as_the_worst_answer() -> None:
    case = GoldenCase(
        id="c", question="q", answerable=True, reference_answer="r", required_facts=("x",)
    )
    scores = score_case(case, Answer(error="HTTP 503"))
    assert {k: scores[k] for k in QUALITY} == dict.fromkeys(QUALITY, 0.0)
    assert scores["latency_seconds"] is None and scores["cost_per_answer"] is None


def test_golden_dataset_loads_with_its_digest() -> None:
    dataset = load_dataset("eval/golden.jsonl")
    assert len(dataset.cases) == dataset.cases_in_file == GOLDEN_CASES == 103
    assert dataset.sha256 == hashlib.sha256(GOLDEN.read_bytes()).hexdigest()
    assert [c.id for c in load_dataset("eval/golden.jsonl", limit=5).cases] == [
        c.id for c in dataset.cases[:5]
    ]


def test_a_bad_dataset_line_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(GOLDEN.read_text().splitlines()[0] + '\n{"id": "x", "question": "q"}\n')
    with pytest.raises(ToolkitError, match=r"bad.jsonl line 2: field 'answerable': Field required"):
        load_dataset(str(bad))


# --- intervals -------------------------------------------------------------------------------


def test_paired_interval_matches_scipy_paired_t_test() -> None:
    rng = random.Random(7)  # noqa: S311  # reproducible test data, not security
    baseline = [rng.random() for _ in range(60)]
    candidate = [min(1.0, b + rng.gauss(0.03, 0.2)) for b in baseline]
    ours = paired_interval(candidate, baseline, alpha=0.05)
    reference = scipy_stats.ttest_rel(candidate, baseline).confidence_interval(0.95)
    assert ours.low == pytest.approx(reference.low, abs=1e-12)
    assert ours.high == pytest.approx(reference.high, abs=1e-12)
    assert ours.n == 60


def test_identical_arms_give_an_exactly_zero_interval() -> None:
    values = [0.2, 0.9, 0.4, 1.0]
    same = paired_interval(values, values, alpha=0.05)
    assert (same.estimate, same.low, same.high, same.n) == (0.0, 0.0, 0.0, 4)
    single = mean_interval([0.5], alpha=0.05)
    assert single.low == float("-inf") and single.high == float("inf")


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 9, 30, 85, 102, 500])
@pytest.mark.parametrize("p", [0.95, 0.975, 0.995])
def test_t_quantile_without_scipy_matches_scipy(
    monkeypatch: pytest.MonkeyPatch, df: int, p: float
) -> None:
    expected = scipy_stats.t.ppf(p, df)
    monkeypatch.setitem(sys.modules, "scipy.stats", None)  # the import now fails
    assert t_quantile(p, df) == pytest.approx(expected, rel=1e-9, abs=1e-9)


# --- the gate --------------------------------------------------------------------------------

HIGHER = EvalMetricPolicy(max_regression=0.05, limit=0.3)


def test_gate_requires_the_lower_bound_within_the_margin() -> None:
    # Mean difference -0.02 (inside the margin) but so noisy that -0.05 is not ruled out.
    noisy = [(0.5 + d, 0.5) for d in [-0.3, 0.26] * 5]
    result = judge_score("correctness", HIGHER, noisy, alpha=0.05)
    assert result.difference.estimate == pytest.approx(-0.02)
    assert result.difference.low < -0.05
    assert result.verdict == "fail"
    assert "not shown within the margin" in result.reason


def test_gate_passes_a_candidate_shown_within_the_margin() -> None:
    close = [(0.5 + d, 0.5) for d in [-0.03, 0.01] * 20]
    result = judge_score("correctness", HIGHER, close, alpha=0.05)
    assert result.difference.low >= -0.05
    assert result.verdict == "pass"


def test_gate_fails_a_candidate_clearly_worse_or_below_the_floor() -> None:
    worse = judge_score("correctness", HIGHER, [(0.6, 0.8)] * 10, alpha=0.05)
    assert worse.verdict == "fail" and "by more than 0.05" in worse.reason
    low = judge_score("correctness", HIGHER, [(0.25, 0.25)] * 10, alpha=0.05)
    assert low.verdict == "fail" and "below the limit 0.3" in low.reason


def test_gate_reads_lower_is_better_scores_with_a_relative_margin() -> None:
    latency = EvalMetricPolicy(direction="lower_is_better", max_relative_regression=0.5)
    slower = judge_score("latency_seconds", latency, [(1.4, 1.0)] * 10, alpha=0.05)
    much_slower = judge_score("latency_seconds", latency, [(1.6, 1.0)] * 10, alpha=0.05)
    assert slower.margin == 0.5 and slower.verdict == "pass"
    assert much_slower.verdict == "fail"


def test_gate_without_enough_cases_or_rules() -> None:
    assert judge_score("correctness", HIGHER, [(1.0, 1.0)], alpha=0.05).verdict == "inconclusive"
    assert judge_score("correctness", HIGHER, [(0.9, 1.0)], alpha=0.05).verdict == "inconclusive"
    assert judge_score("correctness", None, [(0.9, 1.0)] * 3, alpha=0.05).verdict == "report"
    assert judge_score("correctness", HIGHER, [], alpha=0.05).verdict == "missing"


# --- requests: retries only on connection errors ---------------------------------------------

CASE = GoldenCase(id="c", question="q", answerable=True, reference_answer="r")
BODY = {
    "answer": "r [1]",
    "quality": {"refused": False, "groundedness": 1.0, "score": 1.0, "cited": True},
    "usage": {"estimated_cost_usd": 1e-4, "prompt_tokens": 1, "completion_tokens": 1},
    "prompt": {"name": "rag_answer", "version": "v2"},
    "model": {"name": "m", "version": "v1"},
}


async def _ask(handler: Any, retries: int = 2) -> tuple[Answer, int]:
    calls: list[httpx.Request] = []

    def counting(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        response: httpx.Response = handler(request, len(calls))
        return response

    async with httpx.AsyncClient(transport=httpx.MockTransport(counting)) as client:
        asker = Asker(client, "rag_answer", ADMIN_TOKEN, retries)
        answer = await asker.ask(ArmService("candidate", "http://svc", "v2"), CASE)
    return answer, len(calls)


async def test_connection_errors_are_retried() -> None:
    def handler(request: httpx.Request, call: int) -> httpx.Response:
        if call == 1:
            raise httpx.ConnectError("refused", request=request)
        assert request.headers["X-Pin-Prompt-Version"] == "v2"
        return httpx.Response(200, json=BODY)

    answer, calls = await _ask(handler)
    assert (answer.error, answer.model, calls) == (None, "m@v1", 2)


async def test_server_errors_and_timeouts_are_not_retried() -> None:
    def fail(request: httpx.Request, call: int) -> httpx.Response:
        return httpx.Response(503, json={"detail": "Down."})

    def slow(request: httpx.Request, call: int) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    assert await _ask(fail) == (Answer(error="HTTP 503"), 1)
    assert await _ask(slow) == (Answer(error="timeout"), 1)


async def test_a_service_that_stays_unreachable_is_a_usage_error() -> None:
    def refuse(request: httpx.Request, call: int) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ToolkitError, match="lost the candidate service"):
        await _ask(refuse, retries=1)


# --- the CLI without a service ---------------------------------------------------------------


def test_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--candidate-version", "--candidate-url", "--write-evaluation", "--limit"):
        assert option in out


def test_without_a_service_it_says_how_to_name_one(capsys: pytest.CaptureFixture[str]) -> None:
    code, envelope, err = run(capsys)
    assert code == 2 and envelope["status"] == "error"
    assert "name the service" in envelope["errors"][0]
    assert err.startswith("error: ")


def test_unreachable_service_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, envelope, _ = run(capsys, "--url", url, "--candidate-version", "v2")
    assert code == 2
    assert envelope["errors"] == [
        f"cannot reach the service at {url} (ConnectError); start it or fix the URL."
    ]


def test_a_policy_rule_for_an_unknown_score_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = copy.deepcopy(EXAMPLE)
    data["evaluation"]["metrics"]["correctnes"] = data["evaluation"]["metrics"].pop("correctness")
    policy = write(tmp_path, data)
    code, envelope, _ = run(capsys, "--policy", str(policy), "--url", "http://127.0.0.1:9")
    assert code == 2
    assert "unknown score 'correctnes'" in envelope["errors"][0]


# --- against real services -------------------------------------------------------------------


@pytest.fixture(scope="module")
def registry_with_candidates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """registry/ plus the example candidates (retired: pinned by the evaluation only)."""
    registry = tmp_path_factory.mktemp("candidates") / "registry"
    shutil.copytree(REPO / "registry", registry)
    add_prompt(registry, "rag_answer", "v2", status="retired", traffic_percentage=0)
    add_prompt(registry, "rag_answer", "v2-no-context", status="retired", traffic_percentage=0)
    add_prompt(registry, "rag_answer", "v2-concise", status="retired", traffic_percentage=0)
    return registry


@pytest.fixture(scope="module")
def service(start_module_app: StartApp, registry_with_candidates: Path) -> ManagedProcess:
    """One app serving v1 in production, with every candidate pinnable."""
    return start_module_app(registry_dir=str(registry_with_candidates))


@pytest.fixture
def pinned(service: ManagedProcess, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Options naming the service; the admin token comes from the environment, as in CI."""
    monkeypatch.setenv("ROLLOUT_ADMIN_TOKEN", ADMIN_TOKEN)
    return ["--url", service.url]


@pytest.mark.integration
def test_better_candidate_passes_against_production(
    capsys: pytest.CaptureFixture[str], pinned: list[str], tmp_path: Path
) -> None:
    code, envelope, err = run(capsys, *pinned, "--candidate-version", "v2")
    data = envelope["data"]
    assert code == 0 and envelope["status"] == "pass" and envelope["errors"] == []
    assert data["dataset"]["n"] == GOLDEN_CASES  # the full golden set
    assert data["candidate"]["served_versions"] == ["v2"]
    assert data["baseline"]["served_versions"] == ["v1"]  # production, from /version
    assert {s["verdict"] for s in data["scores"].values()} == {"pass"}
    for name in ("groundedness", "refusal_correctness"):
        assert data["scores"][name]["difference"]["ci_low"] > 0  # significantly better
    summary = summary_text(tmp_path)
    assert "### Quality evaluation: **PASS**" in summary
    assert "| score | baseline | candidate | difference (95% CI) | threshold | verdict |" in summary
    for name in data["scores"]:
        assert f"| {name} |" in summary
    assert "quality gate PASS" in err


@pytest.mark.integration
def test_context_free_candidate_fails_the_gate(
    capsys: pytest.CaptureFixture[str], pinned: list[str], tmp_path: Path
) -> None:
    code, envelope, _ = run(capsys, *pinned, "--candidate-version", "v2-no-context")
    scores = envelope["data"]["scores"]
    assert code == 1 and envelope["status"] == "fail"
    assert scores["required_facts"]["candidate"]["estimate"] == 0.0
    for name in ("correctness", "required_facts", "groundedness"):
        assert scores[name]["verdict"] == "fail"
        assert scores[name]["difference"]["ci_high"] < -0.05  # worse beyond doubt
    assert any(e.startswith("required_facts: ") for e in envelope["errors"])
    summary = summary_text(tmp_path)
    assert "**FAIL**" in summary and "Largest regressions:" in summary


@pytest.mark.integration
def test_concise_example_fails_on_required_facts_only(
    capsys: pytest.CaptureFixture[str], pinned: list[str]
) -> None:
    """examples/prompts/rag_answer/v2-concise.yaml answers with one sentence: more precise
    (higher F1, cheaper) but it drops facts the second sentence carried; the gate catches it."""
    code, envelope, _ = run(capsys, *pinned, "--candidate-version", "v2-concise")
    scores = envelope["data"]["scores"]
    assert code == 1
    assert [n for n, s in scores.items() if s["verdict"] == "fail"] == ["required_facts"]
    assert scores["correctness"]["difference"]["ci_low"] > 0
    assert scores["cost_per_answer"]["difference"]["ci_high"] < 0


@pytest.mark.integration
def test_a_version_against_itself_differs_by_exactly_zero(
    capsys: pytest.CaptureFixture[str], pinned: list[str]
) -> None:
    code, envelope, _ = run(
        capsys, *pinned, "--candidate-version", "v1", "--baseline-version", "v1"
    )
    scores = envelope["data"]["scores"]
    assert code == 0
    for name in (*QUALITY, "cost_per_answer"):
        difference = scores[name]["difference"]
        assert (difference["estimate"], difference["ci_low"], difference["ci_high"]) == (0, 0, 0)
    assert scores["latency_seconds"]["verdict"] == "pass"


@pytest.mark.integration
def test_results_do_not_depend_on_concurrency(
    capsys: pytest.CaptureFixture[str], pinned: list[str]
) -> None:
    def scores(concurrency: str) -> list[dict[str, Any]]:
        code, envelope, _ = run(
            capsys, *pinned, "--candidate-version", "v2", "--limit", "30",
            "--concurrency", concurrency,
        )  # fmt: skip
        assert code in (0, 1)
        return [
            {k: v for k, v in case["candidate"].items() if k != "latency_seconds"}
            for case in envelope["data"]["cases"]
        ]

    serial = scores("1")
    assert len(serial) == 30
    assert scores("16") == serial


@pytest.mark.integration
def test_unknown_version_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], pinned: list[str], service: ManagedProcess
) -> None:
    code, envelope, err = run(capsys, *pinned, "--candidate-version", "v9")
    assert code == 2
    message = envelope["errors"][0]
    assert message.startswith(
        f"the service at {service.url} has no version 'v9' of prompt 'rag_answer' (it has: v1, "
    )
    assert err.strip() == f"error: {message}"


@pytest.mark.integration
def test_a_wrong_admin_token_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], service: ManagedProcess
) -> None:
    code, envelope, _ = run(
        capsys, "--url", service.url, "--candidate-version", "v2", "--admin-token", "wrong",
        "--limit", "3",
    )  # fmt: skip
    assert code == 2
    assert (
        "refused the request (HTTP 403: A valid X-Admin-Token header is required)"
        in (envelope["errors"][0])
    )


@pytest.mark.integration
def test_write_evaluation_records_the_result_in_the_registry(
    capsys: pytest.CaptureFixture[str], pinned: list[str], registry_dir: Path
) -> None:
    code, envelope, _ = run(
        capsys, *pinned, "--candidate-version", "v2-no-context", "--limit", "20",
        "--write-evaluation", "auto", "--registry-dir", str(registry_dir),
    )  # fmt: skip
    folder = registry_dir / "models" / "extractive-base" / "v2026-01"
    assert code == 1
    assert envelope["data"]["evaluation_file"] == str(folder / "evaluation.json")
    record = load_registry(registry_dir).models["extractive-base@v2026-01"].evaluation
    assert record is not None
    assert (record["model"], record["version"]) == ("extractive-base", "v2026-01")
    assert record["prompt"] == {"name": "rag_answer", "version": "v2-no-context"}
    assert record["dataset"]["sha256"] == hashlib.sha256(GOLDEN.read_bytes()).hexdigest()
    assert record["dataset"]["n"] == 20
    assert record["baseline"]["prompt"]["version"] == "v1"
    assert record["gate"]["passed"] is False and record["gate"]["status"] == "fail"
    assert record["scores"]["required_facts"]["estimate"] == 0.0
    assert record["evaluated_at"].endswith("+00:00")
    assert sorted(p.name for p in folder.iterdir()) == ["config.yaml", "evaluation.json"]


@pytest.mark.integration
def test_write_evaluation_refuses_another_models_folder(
    capsys: pytest.CaptureFixture[str], pinned: list[str], registry_dir: Path
) -> None:
    target = registry_dir / "models" / "extractive-mini" / "v2025-08" / "evaluation.json"
    code, envelope, _ = run(
        capsys, *pinned, "--candidate-version", "v2", "--limit", "3",
        "--write-evaluation", str(target),
    )  # fmt: skip
    assert code == 2
    assert "belongs to extractive-mini@v2025-08" in envelope["errors"][0]
    assert not target.exists()


@pytest.mark.integration
def test_two_deployments_compare_what_each_serves(
    capsys: pytest.CaptureFixture[str],
    start_app: StartApp,
    registry_dir: Path,
    tmp_path: Path,
) -> None:
    """A code canary against stable: no pinning, no admin token; each serves its production."""
    canary_registry = tmp_path / "canary-registry"
    shutil.copytree(registry_dir, canary_registry)
    write_atomically(
        canary_registry / "prompts" / "rag_answer" / "v1.yaml",
        (REPO / "registry" / "prompts" / "rag_answer" / "v1.yaml")
        .read_text()
        .replace("status: production", "status: retired"),
    )
    write_atomically(
        canary_registry / "prompts" / "rag_answer" / "v2.yaml",
        example_prompt("rag_answer", "v2", status="production", traffic_percentage=0),
    )
    stable = start_app(registry_dir=str(registry_dir), track="stable")
    canary = start_app(registry_dir=str(canary_registry), track="canary", version="new-sha")
    code, envelope, _ = run(capsys, "--candidate-url", canary.url, "--baseline-url", stable.url)
    data = envelope["data"]
    assert code == 0
    assert (data["candidate"]["pinned"], data["baseline"]["pinned"]) == (None, None)
    assert data["candidate"]["served_versions"] == ["v2"]
    assert data["candidate"]["app_version"] == "new-sha"
    assert data["baseline"]["served_versions"] == ["v1"]


@pytest.mark.integration
def test_failing_candidate_answers_count_as_errors(
    capsys: pytest.CaptureFixture[str],
    start_app: StartApp,
    broken_provider: ManagedProcess,
    registry_dir: Path,
    tmp_path: Path,
) -> None:
    broken_registry = tmp_path / "broken"
    shutil.copytree(registry_dir, broken_registry)
    set_provider_model(broken_registry, "fail:evaluate-quality")
    stable = start_app(registry_dir=str(registry_dir))
    broken = start_app(
        registry_dir=str(broken_registry),
        provider_base_url=f"{broken_provider.url}/v1",
        provider_max_retries="0",
        wait="/healthz",
    )
    code, envelope, _ = run(
        capsys, "--candidate-url", broken.url, "--baseline-url", stable.url, "--limit", "10"
    )
    data = envelope["data"]
    assert code == 1
    assert (data["candidate"]["errors"], data["baseline"]["errors"]) == (10, 0)
    assert data["scores"]["correctness"]["candidate"]["estimate"] == 0.0
    assert {c["candidate_error"] for c in data["cases"]} == {"HTTP 503"}


@pytest.mark.integration
def test_a_version_registered_a_moment_ago_is_waited_for_with_one_url(
    capsys: pytest.CaptureFixture[str],
    pinned: list[str],
    registry_with_candidates: Path,
) -> None:
    """One URL for both arms: the candidate registered while the service has not reloaded yet
    is waited for (the baseline, production, needs no name), not reported missing."""
    registry = registry_with_candidates
    timer = threading.Timer(1.0, add_prompt, (registry, "rag_answer", "v2"), {"status": "retired"})
    (registry / "prompts" / "rag_answer" / "v2.yaml").rename(registry / "v2.yaml.away")
    try:
        time.sleep(0.6)  # the service (reloading every 0.2 s) has seen v2 go
        timer.start()
        code, envelope, err = run(capsys, *pinned, "--candidate-version", "v2", "--limit", "3")
    finally:
        timer.join()
        (registry / "v2.yaml.away").unlink(missing_ok=True)
    assert "has no version 'v2'" not in err, err
    assert code in (0, 1), envelope  # the gate ran (its verdict is another test's concern)
