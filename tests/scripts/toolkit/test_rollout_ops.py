"""promote --add (register a version file in the registry the rollout targets), --candidate
--to full (revert a promotion in one change), and the local platform's admin token."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from contract.files import REPO_ROOT
from contract.registry.loader import load_registry
from scripts import promote
from scripts.toolkit.cli import EXIT_OK, EXIT_USAGE
from scripts.toolkit.options import platform_admin_token
from scripts.toolkit.platform.state import PlatformState, ProcessRecord, StateStore

REPO = REPO_ROOT
EXAMPLE = REPO / "examples" / "prompts" / "rag_answer" / "v2.yaml"


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    """A copy of the repository's registry (v1 production only)."""
    target = tmp_path / "registry"
    shutil.copytree(REPO / "registry", target)
    return target


def run(registry: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    """promote with --target prompt on `registry`; exit code and the JSON envelope."""
    code = promote.main(
        ["--target", "prompt", "--registry-dir", str(registry), "--output", "json", *args]
    )
    return code, json.loads(capsys.readouterr().out)


def versions(registry: Path) -> dict[str, tuple[str, float]]:
    prompts = load_registry(registry).prompts["rag_answer"].versions
    return {v: (p.status, p.traffic_percentage) for v, p in prompts.items()}


def test_add_registers_a_retired_version_once_and_names_the_command_when_missing(
    registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(registry, "--candidate", "v2", capsys=capsys)
    assert code == EXIT_USAGE
    assert "python -m scripts.promote --target prompt --add" in out["errors"][0]

    for _ in range(2):  # idempotent
        code, out = run(registry, "--add", str(EXAMPLE), capsys=capsys)
        assert code == EXIT_OK, out
        assert versions(registry)["v2"] == ("retired", 0.0)

    changed = registry.parent / "v2.yaml"
    changed.write_text(EXAMPLE.read_text().replace("min_score: 0.3", "min_score: 0.2"))
    code, out = run(registry, "--add", str(changed), capsys=capsys)
    assert code == EXIT_USAGE
    assert "already registered with other content" in out["errors"][0]


def test_add_with_candidate_starts_the_canary(
    registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = run(registry, "--add", str(EXAMPLE), "--candidate", "v2", capsys=capsys)
    assert code == EXIT_OK
    assert versions(registry)["v2"] == ("canary", 5.0)


def test_add_registers_a_model_version_folder(
    registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "models" / "extractive-base" / "v2026-09"
    shutil.copytree(REPO / "registry" / "models" / "extractive-base" / "v2026-01", source)
    code, out = run(registry, "--add", str(source), capsys=capsys)
    assert code == EXIT_OK, out
    assert "extractive-base@v2026-09" in load_registry(registry).models


def test_add_is_refused_for_code_rollouts(capsys: pytest.CaptureFixture[str]) -> None:
    assert promote.main(["--add", str(EXAMPLE)]) == EXIT_USAGE
    assert "--target prompt" in capsys.readouterr().err


def test_a_promoted_version_is_reverted_to_the_previous_one_in_one_change(
    registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(registry, "--add", str(EXAMPLE), "--candidate", "v2", capsys=capsys)
    assert run(registry, "--to", "full", capsys=capsys)[0] == EXIT_OK
    assert versions(registry) == {"v1": ("retired", 0.0), "v2": ("production", 0.0)}
    for _ in range(2):  # idempotent
        code, out = run(registry, "--candidate", "v1", "--to", "full", capsys=capsys)
        assert code == EXIT_OK, out
        assert versions(registry) == {"v1": ("production", 0.0), "v2": ("retired", 0.0)}


def test_the_platform_token_is_used_only_for_the_platforms_own_urls(tmp_path: Path) -> None:
    record = ProcessRecord("stable", "app", 1, "x", 41001, [], ".", "log", track="stable")
    state = PlatformState(
        state_dir=str(tmp_path),
        repo=str(REPO),
        admin_token="secret",
        router_port=41000,
        registry_dir=str(tmp_path / "registry"),
        processes={"stable": record},
    )
    StateStore(tmp_path).write(state)
    assert platform_admin_token(tmp_path, ["http://127.0.0.1:41000", None]) == "secret"
    assert platform_admin_token(tmp_path, ["http://localhost:41001/"]) == "secret"
    assert (
        platform_admin_token(tmp_path, ["http://127.0.0.1:41000", "http://10.0.0.1:41001"]) is None
    )
    assert platform_admin_token(tmp_path, ["http://127.0.0.1:9"]) is None
    assert platform_admin_token(tmp_path / "none", ["http://127.0.0.1:41000"]) is None
