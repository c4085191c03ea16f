"""Scratch registries for tests: written from scratch, or edited the way an operator would (whole
files, swapped in atomically); and the repository paths they start from."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from contract.files import REPO_ROOT as REPO

EXAMPLES = REPO / "examples" / "prompts"
BASE_MODEL_CONFIG = Path("models/extractive-base/v2026-01/config.yaml")


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` in one rename, so a watcher never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A hidden name that is not `*.yaml`: the registry loader and its digest both skip it.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".part")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    Path(tmp).replace(path)


def example_prompt(name: str, version: str, **changes: Any) -> str:
    """The YAML of `examples/prompts/<name>/<version>.yaml` with top-level fields changed."""
    data = yaml.safe_load((EXAMPLES / name / f"{version}.yaml").read_text(encoding="utf-8"))
    data.update(changes)
    return yaml.safe_dump(data, sort_keys=False)


def add_prompt(registry: Path, name: str, version: str, **changes: Any) -> Path:
    """Copy an example prompt version into `registry` (e.g. as a canary); returns its path."""
    target = registry / "prompts" / name / f"{version}.yaml"
    write_atomically(target, example_prompt(name, version, **changes))
    return target


def set_provider_model(registry: Path, provider_model: str) -> None:
    """Point the default model version (extractive-base@v2026-01) at another provider model."""
    path = registry / BASE_MODEL_CONFIG
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["provider_model"] = provider_model
    write_atomically(path, yaml.safe_dump(data, sort_keys=False))


KB_DIR = REPO / "app" / "knowledge" / "kb"
REGISTRY_DIR = REPO / "registry"
GOLDEN = REPO / "eval" / "golden.jsonl"

MODEL = "provider_model: extractive-base\n"

# The fields of a valid production prompt bound to the scratch model `m@v1`.
PROMPT_FIELDS: dict[str, Any] = {
    "status": "production",
    "model": "m@v1",
    "system": "Answer only from the numbered context documents and cite them as [n].",
    "template": "Context:\n{context}\n\nQuestion: {question}\n",
}


def prompt_yaml(*, drop: tuple[str, ...] = (), **fields: Any) -> str:
    """A prompt file: the valid fields above, with `fields` replaced and `drop` left out."""
    data = {**PROMPT_FIELDS, **fields}
    return yaml.safe_dump({k: v for k, v in data.items() if k not in drop}, sort_keys=False)


PROMPT = prompt_yaml()


def write_registry(
    root: Path,
    *,
    prompts: dict[str, str] | None = None,
    models: dict[str, str] | None = None,
) -> Path:
    """Write a registry under `root`: files keyed `name/version`, YAML text as values.

    Defaults: one model `m/v1` and one production prompt `rag/v1`.
    """
    for ref, text in (models if models is not None else {"m/v1": MODEL}).items():
        folder = root / "models" / ref
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.yaml").write_text(text, encoding="utf-8")
    (root / "models").mkdir(parents=True, exist_ok=True)
    for ref, text in (prompts if prompts is not None else {"rag/v1": PROMPT}).items():
        path = root / "prompts" / f"{ref}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (root / "prompts").mkdir(parents=True, exist_ok=True)
    return root


def golden_rows() -> list[dict[str, Any]]:
    """The golden questions of eval/golden.jsonl."""
    lines = GOLDEN.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]
