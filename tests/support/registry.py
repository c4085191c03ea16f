"""Edit a scratch registry copy the way an operator would: whole files, swapped in atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
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
