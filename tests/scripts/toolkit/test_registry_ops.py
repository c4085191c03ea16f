"""promote and rollback on prompt/model versions, in-process through main([...])."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from contract.files import REPO_ROOT
from contract.registry.loader import load_registry
from scripts import promote, rollback
from scripts.toolkit import registry_ops
from scripts.toolkit.cli import EXIT_OK, EXIT_USAGE, ToolkitError
from tests.support.registry import add_prompt

REPO = REPO_ROOT


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    """A registry copy with v2 and v2-no-context available (retired)."""
    target = tmp_path / "registry"
    shutil.copytree(REPO / "registry", target)
    add_prompt(target, "rag_answer", "v2", status="retired", traffic_percentage=0)
    add_prompt(target, "rag_answer", "v2-no-context", status="retired", traffic_percentage=0)
    return target


def run(
    module: object, registry: Path, *args: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict]:
    """Call the script's main with JSON output; return the exit code and the envelope."""
    code = module.main(
        [
            "--target",
            "prompt",
            "--backend",
            "local",
            "--registry-dir",  # type: ignore[attr-defined]
            str(registry),
            "--output",
            "json",
            *args,
        ]
    )
    return code, json.loads(capsys.readouterr().out)


def versions(registry: Path) -> dict[str, tuple[str, float]]:
    """Status and traffic of every rag_answer version."""
    prompts = load_registry(registry).prompts["rag_answer"].versions
    return {v: (p.status, p.traffic_percentage) for v, p in prompts.items()}


def test_promote_walks_a_candidate_through_the_policy_steps(
    registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(promote, registry, "--candidate", "v2", "--to", "next", capsys=capsys)
    assert code == EXIT_OK
    assert out["schema_version"] == 1
    assert out["status"] == "promoted"
    assert versions(registry)["v2"] == ("canary", 5.0)
    for expected in (20.0, 50.0, 100.0):
        code, _ = run(promote, registry, "--to", "next", capsys=capsys)
        assert code == EXIT_OK
        assert versions(registry)["v2"] == ("canary", expected)
    code, _ = run(promote, registry, "--to", "full", capsys=capsys)
    assert code == EXIT_OK
    assert versions(registry)["v2"] == ("production", 0.0)
    assert versions(registry)["v1"] == ("retired", 0.0)
    # Idempotent: promoting again changes nothing and succeeds.
    code, _ = run(promote, registry, "--to", "full", capsys=capsys)
    assert code == EXIT_OK
    assert versions(registry)["v2"] == ("production", 0.0)


def test_rollback_retires_the_canary_and_is_idempotent(
    registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry_ops.start_canary(registry, "rag_answer", "v2-no-context", 20)
    for _ in range(2):
        code, out = run(rollback, registry, "--reason", "quality drop", capsys=capsys)
        assert code == EXIT_OK
        assert out["data"]["reason"] == "quality drop"
        assert versions(registry)["v2-no-context"] == ("retired", 0.0)
        assert versions(registry)["v1"] == ("production", 0.0)


def test_promote_refuses_a_second_canary_and_bad_shares(
    registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry_ops.start_canary(registry, "rag_answer", "v2", 5)
    with pytest.raises(ToolkitError, match="already has canary v2"):
        registry_ops.start_canary(registry, "rag_answer", "v2-no-context", 5)
    code, out = run(promote, registry, "--to", "150", capsys=capsys)
    assert code == EXIT_USAGE
    assert "at most 100" in out["errors"][0]
    code, out = run(promote, registry, "--to", "lots", capsys=capsys)
    assert code == EXIT_USAGE
    assert "next, full or a percentage" in out["errors"][0]


def test_an_invalid_registry_is_refused_before_any_change(
    registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (registry / "prompts" / "rag_answer" / "v1.yaml").write_text(
        "status: [oops\n", encoding="utf-8"
    )
    code, out = run(rollback, registry, capsys=capsys)
    assert code == EXIT_USAGE
    assert "fix it first" in out["errors"][0]
    assert "v1.yaml" in out["errors"][0]


def test_edits_keep_comments_and_leave_no_lock_behind(registry: Path) -> None:
    path = registry / "prompts" / "rag_answer" / "v2.yaml"
    path.write_text("# keep me\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    registry_ops.start_canary(registry, "rag_answer", "v2", 5)
    assert path.read_text(encoding="utf-8").startswith("# keep me\n")
    assert not (registry / ".writing").exists()
    assert not list(registry.rglob(".*.tmp"))


def test_step_summary_gets_a_record(
    registry: Path,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    registry_ops.start_canary(registry, "rag_answer", "v2", 5)
    code, _ = run(rollback, registry, "--reason", "drill", capsys=capsys)
    assert code == EXIT_OK
    assert "### Rollback" in summary.read_text(encoding="utf-8")
    assert "drill" in summary.read_text(encoding="utf-8")
