"""Unit tests of contract/registry/configmap.py: registry paths as ConfigMap keys and back, and
the nested folder rebuilt from a ConfigMap mounted the way the kubelet mounts it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from contract.registry.configmap import (
    from_configmap_key,
    read_flat,
    registry_files,
    to_configmap_key,
    unflatten,
)
from contract.registry.loader import RegistryError, load_registry
from contract.registry.writing import WRITER_LOCK
from tests.support.registry import REGISTRY_DIR

# Published vectors: any tool that writes or reads the ConfigMap must agree on these.
VECTORS = [
    ("prompts/rag_answer/v1.yaml", "prompts--rag_answer--v1.yaml"),
    (
        "models/extractive-base/v2026-01/config.yaml",
        "models--extractive-base--v2026-01--config.yaml",
    ),
    ("models/m.x/v1/evaluation.json", "models--m.x--v1--evaluation.json"),
]


@pytest.mark.parametrize(("path", "key"), VECTORS)
def test_keys_round_trip(path: str, key: str) -> None:
    assert to_configmap_key(path) == key
    assert from_configmap_key(key) == path


@pytest.mark.parametrize(
    "path",
    [
        "prompts/a--b/v1.yaml",  # '--' inside a name would read back as a folder
        "prompts/rag-/v1.yaml",  # 'rag-' + '--' reads back as 'rag' + '/-v1'
        "prompts/rag answer/v1.yaml",  # not a ConfigMap key character
        "prompts//v1.yaml",
        "prompts/../v1.yaml",
        "prompts/" + "x" * 250 + "/v1.yaml",  # keys are at most 253 characters
    ],
)
def test_ambiguous_or_invalid_paths_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match="rename it"):
        to_configmap_key(path)


@pytest.mark.parametrize("key", ["prompts----x.yaml", "a/b", "prompts--a-----v1.yaml"])
def test_keys_not_made_by_the_encoding_are_refused(key: str) -> None:
    with pytest.raises(ValueError, match=r"rename it|not a key"):
        from_configmap_key(key)


def test_the_loader_refuses_a_name_a_configmap_cannot_hold(registry_dir: Path) -> None:
    shutil.copytree(registry_dir / "prompts" / "rag_answer", registry_dir / "prompts" / "a--b")
    for path in (registry_dir / "prompts" / "a--b").glob("*.yaml"):
        path.write_text(path.read_text().replace("rag_answer", "a--b"))
    with pytest.raises(RegistryError, match=r"a--b.*cannot be a ConfigMap key part"):
        load_registry(registry_dir)


def kubelet_mount(folder: Path, files: dict[str, str], generation: str) -> None:
    """Lay out `files` (registry path -> text) as the kubelet mounts a ConfigMap: the keys in a
    timestamped hidden folder, `..data` pointing at it, one symlink per key through `..data`,
    all swapped at once by renaming the `..data` link."""
    folder.mkdir(exist_ok=True)
    stamped = folder / f"..{generation}"
    stamped.mkdir()
    for path, text in files.items():
        (stamped / to_configmap_key(path)).write_text(text)
    (folder / "..data_tmp").symlink_to(stamped.name)
    os.replace(folder / "..data_tmp", folder / "..data")
    for entry in folder.iterdir():
        if not entry.name.startswith(".."):
            entry.unlink()
    for path in files:
        (folder / to_configmap_key(path)).symlink_to(f"..data/{to_configmap_key(path)}")


def test_unflatten_rebuilds_the_registry_and_follows_changes(tmp_path: Path) -> None:
    mount, registry = tmp_path / "configmap", tmp_path / "registry"
    files = registry_files(REGISTRY_DIR)
    kubelet_mount(mount, files, "2025_01_01_00_00_00.1")
    assert read_flat(mount) == {p: t.encode() for p, t in files.items()}

    assert unflatten(mount, registry)
    assert registry_files(registry) == files
    assert load_registry(registry).summary() == load_registry(REGISTRY_DIR).summary()
    assert not unflatten(mount, registry), "nothing changed, nothing written"

    # A new version added, one file changed, one removed: what the toolkit's patch would do.
    changed = dict(files)
    v2 = changed["prompts/rag_answer/v1.yaml"].replace("status: production", "status: retired")
    changed["prompts/rag_answer/v2.yaml"] = v2
    del changed["models/extractive-mini/v2025-08/config.yaml"]
    kubelet_mount(mount, changed, "2025_01_01_00_01_00.2")
    assert unflatten(mount, registry)
    assert registry_files(registry) == changed
    assert not (registry / "models" / "extractive-mini").exists(), "empty folders go too"
    assert not (registry / WRITER_LOCK).exists(), "the writer lock is released"
