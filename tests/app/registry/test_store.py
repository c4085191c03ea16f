"""Unit tests of app/registry/store.py: hot reload that never drops the last good registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.registry.store import RegistryStore, ReloadResult
from contract.registry.loader import RegistryError, load_registry
from tests.support.registry import PROMPT, REGISTRY_DIR, prompt_yaml, write_registry

CANARY = prompt_yaml(status="canary", traffic_percentage=50)


def load_error(root: Path) -> str:
    """The message of the RegistryError that loading `root` raises."""
    with pytest.raises(RegistryError) as caught:
        load_registry(root)
    return str(caught.value)


class Recorder:
    """An on_reload callback that keeps every (outcome, serving digest) it receives."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, result: ReloadResult, registry: object) -> None:
        self.calls.append((result.outcome, getattr(registry, "digest", "")))


def test_reload_unchanged_when_nothing_changed(tmp_path: Path) -> None:
    store = RegistryStore(write_registry(tmp_path))
    digest = store.current.digest
    result = store.reload()
    assert (result.outcome, result.digest, result.error) == ("unchanged", digest, None)
    assert store.reload(force=True).outcome == "unchanged"


def test_reload_after_valid_change(tmp_path: Path) -> None:
    store = RegistryStore(write_registry(tmp_path))
    old = store.current
    (tmp_path / "prompts" / "rag" / "v2.yaml").write_text(CANARY, encoding="utf-8")
    result = store.reload()
    assert result.outcome == "reloaded"
    assert result.digest != old.digest
    assert store.current.digest == result.digest
    canary = store.current.prompts["rag"].canary
    assert canary is not None
    assert canary.version == "v2"


def test_rejected_change_keeps_the_last_good_registry_then_a_fix_reloads(tmp_path: Path) -> None:
    recorder = Recorder()
    store = RegistryStore(write_registry(tmp_path), on_reload=recorder)
    good = store.current
    broken = tmp_path / "prompts" / "rag" / "v2.yaml"
    broken.write_text("status: canary\ntraffic_percentage: [5\n", encoding="utf-8")

    rejected = store.reload()
    assert rejected.outcome == "rejected"
    assert rejected.error is not None
    assert str(broken) in rejected.error
    assert "line" in rejected.error
    assert store.current is good
    assert store.current.digest == good.digest
    assert sorted(store.current.prompts["rag"].versions) == ["v1"]
    assert store.last_error is not None
    assert str(broken) in store.last_error
    # Polling the same broken folder again does not retry it and keeps the error visible.
    assert store.reload().outcome == "unchanged"
    assert store.current is good
    assert store.last_error is not None

    broken.write_text(CANARY, encoding="utf-8")
    fixed = store.reload()
    assert fixed.outcome == "reloaded"
    assert store.last_error is None
    assert sorted(store.current.prompts["rag"].versions) == ["v1", "v2"]

    assert recorder.calls == [
        ("rejected", good.digest),
        ("reloaded", store.current.digest),
    ]


def test_polls_without_a_change_do_not_reach_the_callback(tmp_path: Path) -> None:
    # Only changes (applied or refused) are reported: a poll every few seconds is not news.
    recorder = Recorder()
    store = RegistryStore(write_registry(tmp_path), on_reload=recorder)
    store.reload()
    assert recorder.calls == []


def test_a_writer_lock_defers_the_reload_until_the_change_is_complete(tmp_path: Path) -> None:
    store = RegistryStore(write_registry(tmp_path))
    before = store.current.digest
    (tmp_path / ".writing").write_text("promote", encoding="utf-8")
    (tmp_path / "prompts" / "rag" / "v1.yaml").write_text("status: [production\n", encoding="utf-8")
    assert store.reload().outcome == "deferred"
    assert store.current.digest == before
    (tmp_path / "prompts" / "rag" / "v1.yaml").write_text(
        prompt_yaml(description="changed"), encoding="utf-8"
    )
    (tmp_path / ".writing").unlink()
    assert store.reload().outcome in ("reloaded", "unchanged")
    assert store.last_error is None


def test_reverting_a_rejected_change_clears_the_error(tmp_path: Path) -> None:
    store = RegistryStore(write_registry(tmp_path))
    prompt = tmp_path / "prompts" / "rag" / "v1.yaml"
    prompt.write_text("status: [production\n", encoding="utf-8")
    assert store.reload().outcome == "rejected"
    prompt.write_text(PROMPT, encoding="utf-8")
    assert store.reload().outcome == "unchanged"
    assert store.last_error is None


def test_store_refuses_to_start_on_a_bad_registry(tmp_path: Path) -> None:
    write_registry(tmp_path, prompts={"rag/v1": prompt_yaml(status="live")})
    with pytest.raises(RegistryError, match="field 'status'"):
        RegistryStore(tmp_path)


def test_repository_registry_copy_reloads_unchanged(registry_dir: Path) -> None:
    store = RegistryStore(registry_dir)
    assert store.current.digest == load_registry(REGISTRY_DIR).digest
    assert store.reload().outcome == "unchanged"
