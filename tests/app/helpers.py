"""Small helpers shared by the unit tests of app/: repository paths and scratch registries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
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
