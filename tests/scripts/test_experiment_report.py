"""`python -m scripts.experiment_report`: sample ratio, winners, guardrails, real traffic."""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import generate_latest
from scipy import stats as scipy_stats

from app.core.metrics import ServiceMetrics
from contract.assignment import in_canary
from scripts.experiment_report import main
from scripts.toolkit.experiment.srm import chi_square_sf, sample_ratio_check
from scripts.toolkit.experiment.variant_stats import histogram_quantile
from scripts.toolkit.metrics import Histogram
from scripts.toolkit.processes import ManagedProcess, free_port
from scripts.toolkit.prometheus_server import prometheus_binary, start_prometheus, write_targets
from tests.support.policy import EXAMPLE, write
from tests.support.polling import poll_until
from tests.support.registry import add_prompt, golden_rows
from tests.support.service import REPO, StartApp

SYNTHETIC = ["--production-version", "v1", "--canary-version", "v2", "--canary-percentage", "50"]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ROLLOUT_* setting leaks in from the caller; the step summary goes to a scratch file;
    the policy is the example one, whose thresholds these tests were written for."""
    for name in [n for n in os.environ if n.startswith("ROLLOUT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    monkeypatch.setenv("ROLLOUT_POLICY", str(write(tmp_path, EXAMPLE)))


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    """Call main in-process with --output json; returns the exit code and the envelope."""
    code = main([*args, "--policy", os.environ["ROLLOUT_POLICY"], "--output", "json"])
    envelope = json.loads(capsys.readouterr().out)
    assert envelope["exit_code"] == code
    return code, envelope


def summary_text(tmp_path: Path) -> str:
    """What the run appended to $GITHUB_STEP_SUMMARY."""
    return (tmp_path / "summary.md").read_text(encoding="utf-8")


def metrics_file(
    path: Path,
    *,
    users: Mapping[str, int],
    quality: Mapping[str, tuple[tuple[float, ...], int]],
    errors: Mapping[str, int] | None = None,
) -> Path:
    """A /metrics page as the service writes it: `quality` is (scores, answers) per version,
    the scores repeated in turn; every answer takes 10 ms and costs $0.0001; `errors` adds
    failed answers."""
    m = ServiceMetrics(track="stable", app_version="t", git_sha="x")
    for version, count in users.items():
        labels = (*m.base, "rag_answer", version, "extractive-base", "v2026-01")
        m.units.labels(*labels).inc(count)
        scores, answers = quality.get(version, ((0.0,), 0))
        for i in range(answers):
            m.answers.labels(*labels, "answered").inc()
            m.quality.labels(*labels).observe(scores[i % len(scores)])
            m.answer_duration.labels(*labels).observe(0.01)
            m.cost.labels(*labels).observe(1e-4)
        m.answers.labels(*labels, "error").inc((errors or {}).get(version, 0))
    path.write_bytes(generate_latest(m.registry))
    return path


# --- statistics ------------------------------------------------------------------------------


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("statistic", [0.0, 0.4, 3.84, 10.83, 160.0])
def test_chi_square_tail_matches_scipy_with_and_without_it(
    monkeypatch: pytest.MonkeyPatch, df: int, statistic: float
) -> None:
    expected = scipy_stats.chi2.sf(statistic, df)
    assert chi_square_sf(statistic, df) == pytest.approx(expected, rel=1e-12, abs=1e-300)
    monkeypatch.setitem(sys.modules, "scipy.stats", None)  # the closed form
    assert chi_square_sf(statistic, df) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_sample_ratio_check_known_values() -> None:
    even = sample_ratio_check({"v1": 510, "v2": 490}, {"v1": 0.5, "v2": 0.5})
    assert even.statistic == pytest.approx(0.4)
    assert even.p_value == pytest.approx(0.52708, abs=1e-5)
    assert not even.flagged
    skewed = sample_ratio_check({"v1": 700, "v2": 300}, {"v1": 0.5, "v2": 0.5})
    assert skewed.statistic == pytest.approx(160.0)
    assert skewed.p_value == pytest.approx(scipy_stats.chi2.sf(160.0, 1))
    assert skewed.flagged
    # 95/5 split, 1000 users, 80 in the canary: chi2 = 45^2/950 + 30^2/50 = 20.13
    small = sample_ratio_check({"v1": 920, "v2": 80}, {"v1": 0.95, "v2": 0.05})
    assert small.statistic == pytest.approx(30**2 / 950 + 30**2 / 50)
    assert small.flagged


def test_sample_ratio_check_needs_enough_users() -> None:
    few = sample_ratio_check({"v1": 6, "v2": 0}, {"v1": 0.5, "v2": 0.5})
    assert few.statistic is None and not few.flagged and "too few users" in few.note


def test_p95_is_interpolated_within_its_bucket() -> None:
    latency = Histogram(bounds=(0.1, 0.2, 0.5, math.inf), counts=(10, 80, 10, 0), total=20.0)
    assert histogram_quantile(0.95, latency) == pytest.approx(0.35)
    assert histogram_quantile(0.5, latency) == pytest.approx(0.1 + 0.1 * 40 / 80)
    beyond = Histogram(bounds=(0.1, math.inf), counts=(1, 99), total=500.0)
    assert histogram_quantile(0.95, beyond) == 0.1  # the highest finite bound


# --- decisions on synthetic metrics ----------------------------------------------------------


def test_sample_ratio_mismatch_blocks_any_winner(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    page = metrics_file(
        tmp_path / "m.txt",
        users={"v1": 700, "v2": 300},
        quality={"v1": ((0.5,), 700), "v2": ((0.9,), 300)},  # the canary looks far better
    )
    code, envelope = run(capsys, *SYNTHETIC, "--metrics-file", str(page))
    data = envelope["data"]
    assert code == 1 and envelope["status"] == "srm"
    assert data["winner"] is None and data["next_command"] is None
    assert data["srm"]["statistic"] == pytest.approx(160.0)
    assert data["srm"]["flagged"] is True
    assert "sample ratio mismatch" in envelope["errors"][0]
    assert "### A/B experiment: **SAMPLE RATIO MISMATCH**" in summary_text(tmp_path)


def test_clearly_better_canary_wins_and_the_promote_command_is_printed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    page = metrics_file(
        tmp_path / "m.txt",
        users={"v1": 300, "v2": 300},
        quality={"v1": ((0.5,), 300), "v2": ((0.9,), 300)},
    )
    code, envelope = run(capsys, *SYNTHETIC, "--metrics-file", str(page))
    data = envelope["data"]
    assert code == 0
    assert (data["winner"], data["winner_role"]) == ("v2", "canary")
    quality = data["comparisons"]["quality_score"]
    assert quality["effect"]["ci_low"] > 0 and quality["better"] == "canary"
    assert data["next_command"] == (
        "python -m scripts.promote --target prompt --prompt rag_answer --to full"
    )
    assert [s["users"] for s in data["variants"]] == [300, 300]
    # Every answer took 10 ms, in the (5 ms, 10 ms] bucket: interpolated as Prometheus does.
    assert data["variants"][0]["latency_p95"] == pytest.approx(0.005 + 0.005 * 0.95)
    summary = summary_text(tmp_path)
    assert "**WINNER**" in summary and data["next_command"] in summary


def test_a_guardrail_worse_beyond_its_margin_vetoes_the_winner(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    page = metrics_file(
        tmp_path / "m.txt",
        users={"v1": 400, "v2": 400},
        quality={"v1": ((0.5,), 300), "v2": ((0.9,), 300)},
        errors={"v2": 100},  # a quarter of the canary's answers fail
    )
    code, envelope = run(capsys, *SYNTHETIC, "--metrics-file", str(page))
    data = envelope["data"]
    assert code == 3 and data["winner"] is None
    assert data["guardrails"]["error_rate"]["blocks"] is True
    assert data["guardrails"]["slow_answers"]["blocks"] is False
    assert data["guardrails"]["error_rate"]["verdict"] == "fail"
    assert data["reasons"] == [
        "canary v2 is better on quality_score but error_rate is significantly worse by more "
        "than 0.02"
    ]


def test_too_little_data_declares_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    page = metrics_file(
        tmp_path / "m.txt",
        users={"v1": 60, "v2": 60},
        quality={"v1": ((0.5,), 60), "v2": ((0.9,), 60)},
    )
    code, envelope = run(capsys, *SYNTHETIC, "--metrics-file", str(page))
    assert code == 3
    assert envelope["data"]["reasons"] == [
        "production v1 has 60 of the 200 quality_score observations needed",
        "canary v2 has 60 of the 200 quality_score observations needed",
    ]


def test_equal_variants_say_how_far_a_decision_is(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    page = metrics_file(
        tmp_path / "m.txt",
        users={"v1": 300, "v2": 300},
        quality={"v1": ((0.3, 1.0), 300), "v2": ((0.32, 1.0), 300)},  # means 0.65, 0.66
    )
    code, envelope = run(capsys, *SYNTHETIC, "--metrics-file", str(page))
    quality = envelope["data"]["comparisons"]["quality_score"]
    assert code == 3 and envelope["status"] == "inconclusive"
    assert quality["effect"]["ci_low"] < 0 < quality["effect"]["ci_high"]
    assert quality["data_factor"] > 1
    assert "interval holds 0" in envelope["data"]["reasons"][0]


# --- usage errors ----------------------------------------------------------------------------


def test_without_an_experiment_it_says_what_to_name(capsys: pytest.CaptureFixture[str]) -> None:
    code, envelope = run(capsys)
    assert code == 2 and "name the experiment" in envelope["errors"][0]


def test_unknown_guardrail_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    page = metrics_file(tmp_path / "m.txt", users={"v1": 1, "v2": 1}, quality={})
    code, envelope = run(capsys, *SYNTHETIC, "--metrics-file", str(page), "--guardrail", "speed")
    assert code == 2
    assert envelope["errors"][0].startswith(
        "experiment.guardrails: 'speed' is not a rollout metric of the policy"
    )


def test_unreachable_metrics_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}/metrics"
    code, envelope = run(capsys, *SYNTHETIC, "--metrics-url", url)
    assert code == 2
    assert envelope["errors"] == [
        f"cannot read metrics at {url} (ConnectError); check --metrics-url."
    ]


# --- real traffic ----------------------------------------------------------------------------


def drive(app: ManagedProcess, users: int, *, prefix: str = "user") -> None:
    """Each user asks one golden question and rates the answer: `up` when it has a required
    fact (or, for an unanswerable question, refuses)."""
    rows = golden_rows()
    with httpx.Client(base_url=app.url, timeout=10) as client:
        for i in range(users):
            row = rows[i % len(rows)]
            response = client.post(
                "/v1/answer", json={"question": row["question"], "user_id": f"{prefix}-{i}"}
            )
            response.raise_for_status()
            body = response.json()
            text = body["answer"].lower()
            good = (
                any(f.lower() in text for f in row["required_facts"])
                if row["answerable"]
                else body["quality"]["refused"]
            )
            rating = {"request_id": body["request_id"], "rating": "up" if good else "down"}
            client.post("/v1/feedback", json=rating).raise_for_status()


def experiment_app(start_app: StartApp, tmp_path: Path, canary: str) -> tuple[ManagedProcess, Path]:
    """An app whose registry serves `canary` (an example prompt) to half the users."""
    registry = tmp_path / "registry"
    shutil.copytree(REPO / "registry", registry)
    add_prompt(registry, "rag_answer", canary, status="canary", traffic_percentage=50)
    return start_app(registry_dir=str(registry)), registry


@pytest.mark.integration
def test_half_and_half_experiment_counts_every_user_in_their_variant(
    capsys: pytest.CaptureFixture[str], start_app: StartApp, tmp_path: Path
) -> None:
    app, _ = experiment_app(start_app, tmp_path, "v2")
    drive(app, 500)
    code, envelope = run(capsys, "--url", app.url, "--min-samples", "100")
    data = envelope["data"]
    in_v2 = sum(in_canary(f"user-{i}", "rag_answer:v2", 50) for i in range(500))
    assert [s["users"] for s in data["variants"]] == [500 - in_v2, in_v2]
    assert abs(in_v2 / 500 - 0.5) < 0.1
    assert data["srm"]["flagged"] is False and data["srm"]["p_value"] > 0.001
    assert sum(s["answers"] for s in data["variants"]) == 500
    assert sum(s["metrics"]["positive_feedback"]["n"] for s in data["variants"]) == 500
    # A winner exactly when the quality interval excludes zero (no guardrail can veto here:
    # nothing fails and nothing is slow).
    quality = data["comparisons"]["quality_score"]["effect"]
    if quality["ci_low"] > 0 or quality["ci_high"] < 0:
        assert code == 0 and data["winner"] == ("v2" if quality["ci_low"] > 0 else "v1")
    else:
        assert code == 3 and data["winner"] is None


@pytest.mark.integration
def test_production_beats_the_context_free_canary_on_quality(
    capsys: pytest.CaptureFixture[str], start_app: StartApp, tmp_path: Path
) -> None:
    app, registry = experiment_app(start_app, tmp_path, "v2-no-context")
    drive(app, 400)
    code, envelope = run(
        capsys,
        "--registry-dir", str(registry),
        "--metrics-url", f"{app.url}/metrics",
        "--min-samples", "100",
    )  # fmt: skip
    data = envelope["data"]
    assert code == 0
    assert (data["winner"], data["winner_role"]) == ("v1", "production")
    assert data["comparisons"]["quality_score"]["effect"]["ci_high"] < 0  # the canary is worse
    assert data["comparisons"]["positive_feedback"]["better"] == "production"
    assert data["next_command"] == (
        f"python -m scripts.rollback --target prompt --prompt rag_answer --registry-dir "
        f"{registry} --reason 'A/B: v1 beat v2-no-context on quality_score'"
    )
    assert "To act on it:" in summary_text(tmp_path)


def scraped_versions(prometheus: ManagedProcess) -> set[str]:
    """Prompt versions whose answers Prometheus has scraped."""
    body = httpx.get(
        f"{prometheus.url}/api/v1/query", params={"query": "app_answers_total"}, timeout=5
    ).json()
    return {r["metric"]["prompt_version"] for r in body["data"]["result"]}


@pytest.mark.integration
@pytest.mark.skipif(prometheus_binary() is None, reason="prometheus is not installed")
def test_the_same_reading_from_prometheus(
    capsys: pytest.CaptureFixture[str], start_app: StartApp, tmp_path: Path
) -> None:
    app, _ = experiment_app(start_app, tmp_path, "v2-no-context")
    targets = tmp_path / "prometheus" / "targets.json"
    write_targets(targets, {"app": [f"127.0.0.1:{app.port}"]})
    prometheus = start_prometheus(
        port=free_port(), workdir=tmp_path / "prometheus", targets_file=targets, scrape_interval=0.5
    )
    args = ["--url", app.url, "--prometheus-url", prometheus.url, "--window-seconds", "600"]

    def reading(answers: int) -> dict[str, Any] | None:
        code, envelope = run(capsys, *args, "--min-samples", "100")
        seen = sum(s["answers"] for s in envelope["data"].get("variants", []))
        return envelope if code != 2 and seen >= answers else None

    try:
        prometheus.wait_http("/-/ready", timeout=30)
        # increase() counts from a series' first scrape: create both variants' series first.
        drive(app, 4, prefix="warm")  # warm-0 is served v1, warm-1 v2-no-context
        poll_until(
            lambda: scraped_versions(prometheus) == {"v1", "v2-no-context"},
            timeout=30,
            message="Prometheus scraped both variants",
        )
        drive(app, 400)
        envelope = poll_until(lambda: reading(395), timeout=30, message="Prometheus has the data")
    finally:
        prometheus.stop()
    assert envelope is not None
    data = envelope["data"]
    in_canary_users = sum(
        in_canary(f"user-{i}", "rag_answer:v2-no-context", 50) for i in range(400)
    )
    assert data["metrics_from"] == f"{prometheus.url} (last 600 s)"
    users = [s["users"] for s in data["variants"]]
    # increase() extrapolates each series to the edges of its window, so counts come out a few
    # percent off (either way); the split between the variants is what must hold.
    assert sum(users) == pytest.approx(400, rel=0.15)
    assert users[1] / sum(users) == pytest.approx(in_canary_users / 400, abs=0.05)
    assert (data["winner"], envelope["exit_code"]) == ("v1", 0)
    assert data["variants"][0]["latency_p95"] is not None


@pytest.mark.integration
def test_the_database_reads_what_metrics_read_and_keeps_it_across_a_restart(
    capsys: pytest.CaptureFixture[str], start_app: StartApp, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'service.db'}"
    registry = tmp_path / "registry"
    shutil.copytree(REPO / "registry", registry)
    add_prompt(registry, "rag_answer", "v2-no-context", status="canary", traffic_percentage=50)
    app = start_app(registry_dir=str(registry), database_url=database)
    drive(app, 200)
    args = ["--registry-dir", str(registry), "--min-samples", "100"]
    _, from_metrics = run(capsys, *args, "--metrics-url", f"{app.url}/metrics")
    app.stop()  # drains: the queued rows are written before it exits
    _, from_database = run(capsys, *args, "--database-url", database)
    for key in ("variants", "comparisons", "srm"):
        assert from_database["data"][key] == from_metrics["data"][key], key
    assert from_database["data"]["metrics_from"].startswith("the service's database (sqlite")
    again = start_app(registry_dir=str(registry), database_url=database)
    drive(again, 200, prefix="later")
    again.stop()
    code, envelope = run(capsys, *args, "--database-url", database)
    data = envelope["data"]
    # The restart lost nothing: both lifetimes' answers and ratings are read.
    assert sum(s["answers"] for s in data["variants"]) == 400
    assert sum(s["metrics"]["positive_feedback"]["n"] for s in data["variants"]) == 400
    assert (data["winner"], code) == ("v1", 0)


def test_an_unreadable_database_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, envelope = run(
        capsys, *SYNTHETIC, "--database-url", f"sqlite:///{tmp_path / 'none' / 'x.db'}"
    )
    assert code == 2
    assert envelope["errors"][0].startswith("cannot read the service's database (")
    assert envelope["errors"][0].endswith("check --database-url.")
