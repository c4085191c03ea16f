"""Prompt and model rollouts: change a registry folder's statuses and traffic, safely.

The service hot-reloads the registry, so these operations are the whole rollout of a prompt or
model version: no redeploy. Every change is written file by file with atomic renames under the
`.writing` lock that the service's reloader waits for, so the service moves from one valid
registry to the next and never serves (or refuses) a half-written change. Each operation is
idempotent: re-running it after an interruption finishes the same change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from contract.files import atomic_write
from contract.registry.loader import Registry, RegistryError, load_registry
from contract.registry.writing import writing
from scripts.toolkit.cli import ToolkitError


@dataclass(frozen=True)
class PromptRollout:
    """The versions of one prompt that a rollout moves between."""

    prompt: str
    production: str
    canary: str | None
    canary_percentage: float


def _load(registry_dir: Path) -> Registry:
    try:
        return load_registry(registry_dir)
    except RegistryError as exc:
        raise ToolkitError(f"the registry is not valid, fix it first: {exc}") from exc


def rollout_state(registry_dir: Path, prompt: str) -> PromptRollout:
    """Production and canary versions of `prompt` as the registry says now."""
    registry = _load(registry_dir)
    prompt_set = registry.prompts.get(prompt)
    if prompt_set is None:
        known = ", ".join(sorted(registry.prompts)) or "none"
        raise ToolkitError(f"the registry has no prompt '{prompt}' (known: {known}).")
    canary = prompt_set.canary
    return PromptRollout(
        prompt=prompt,
        production=prompt_set.production.version,
        canary=canary.version if canary else None,
        canary_percentage=canary.traffic_percentage if canary else 0.0,
    )


def _path(registry_dir: Path, prompt: str, version: str) -> Path:
    return registry_dir / "prompts" / prompt / f"{version}.yaml"


def _update(path: Path, **fields: Any) -> None:
    """Set top-level scalar fields of a prompt file, line by line so its comments and layout
    stay, then replace the file atomically (temporary file and rename): a reader sees the old
    file or the new one, never a mix."""
    text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    if all(data.get(k) == v for k, v in fields.items()):
        return
    lines = text.splitlines()
    for key, value in fields.items():
        scalar = yaml.safe_dump(value, default_flow_style=True).strip()
        rendered = f"{key}: {scalar.removesuffix('...').strip()}"
        pattern = re.compile(rf"^{re.escape(key)}\s*:")
        index = next((i for i, line in enumerate(lines) if pattern.match(line)), None)
        if index is None:
            lines.append(rendered)
        else:
            comment = lines[index].partition(" #")[2]
            lines[index] = f"{rendered}  #{comment}" if comment else rendered
    new_text = "\n".join(lines) + "\n"
    if {k: (yaml.safe_load(new_text) or {}).get(k) for k in fields} != fields:
        raise ToolkitError(f"{path}: could not set {', '.join(fields)} safely; edit it by hand.")
    atomic_write(path, new_text)


ADD_COMMAND = "python -m scripts.promote --target prompt --add"


def add_version(registry_dir: Path, prompt: str, source: Path) -> Path:
    """Register a new prompt version from a file (its name is the version), as `retired` with no
    traffic: the step before `start_canary`. Re-adding the same file changes nothing; another
    file under a registered version's name is refused (a version never changes once added)."""
    if not source.is_file():
        raise ToolkitError(f"{source} is not a file; name a prompt version's YAML file.")
    target = _path(registry_dir, prompt, source.stem)
    if target.exists():
        if _content(target) != _content(source):
            raise ToolkitError(
                f"{prompt} {source.stem} is already registered with other content ({target}); "
                "give the new file a new version name."
            )
        return target
    if rollout_state(registry_dir, prompt).production == source.stem:
        raise ToolkitError(f"{prompt} {source.stem} is already in production.")
    target.parent.mkdir(parents=True, exist_ok=True)
    with writing(registry_dir):
        atomic_write(target, source.read_text(encoding="utf-8"))
        _update(target, status="retired", traffic_percentage=0.0)
    rollout_state(registry_dir, prompt)  # what was written must load
    return target


def _content(path: Path) -> Any:
    """A prompt file without its rollout fields, which the toolkit itself changes."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {k: v for k, v in data.items() if k not in ("status", "traffic_percentage")}


def add_model_version(registry_dir: Path, source: Path) -> Path:
    """Register a model version from its folder `<model>/<version>/` (holding `config.yaml`,
    and `evaluation.json` when evaluated). It serves nobody until a prompt version names it.
    Re-adding the same folder changes nothing; other content under its name is refused."""
    folder = source.parent if source.name == "config.yaml" else source
    if not (folder / "config.yaml").is_file():
        raise ToolkitError(f"{folder} holds no config.yaml; name a model version's folder.")
    target = registry_dir / "models" / folder.parent.name / folder.name
    files = [f for f in ("config.yaml", "evaluation.json") if (folder / f).is_file()]
    if (target / "config.yaml").is_file():
        if any((target / f).read_bytes() != (folder / f).read_bytes() for f in files):
            raise ToolkitError(
                f"model {folder.parent.name}@{folder.name} is already registered with other "
                f"content ({target}); give the new version a new name."
            )
        return target
    with writing(registry_dir):
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            atomic_write(target / name, (folder / name).read_text(encoding="utf-8"))
    _load(registry_dir)
    return target


def _registered(registry_dir: Path, prompt: str, version: str, example: str = "") -> None:
    if not _path(registry_dir, prompt, version).is_file():
        raise ToolkitError(
            f"{prompt} {version} is not registered in {registry_dir}; register its file with "
            f"`{ADD_COMMAND} <file>`{example}."
        )


def _change(registry_dir: Path, prompt: str, changes: dict[str, dict[str, Any]]) -> PromptRollout:
    """Set each version's fields under the `.writing` lock, in order, then read the result back
    through the service's own loader: what was written must be a valid registry."""
    with writing(registry_dir):
        for version, fields in changes.items():
            _update(_path(registry_dir, prompt, version), **fields)
    return rollout_state(registry_dir, prompt)


RETIRED: dict[str, Any] = {"status": "retired", "traffic_percentage": 0.0}
PRODUCTION: dict[str, Any] = {"status": "production", "traffic_percentage": 0.0}


def start_canary(registry_dir: Path, prompt: str, version: str, percentage: float) -> PromptRollout:
    """Make `version` the canary of `prompt` at `percentage` (it must exist in the registry)."""
    current = rollout_state(registry_dir, prompt)
    if version == current.production:
        raise ToolkitError(f"{prompt} {version} is already in production.")
    if current.canary not in (None, version):
        raise ToolkitError(
            f"{prompt} already has canary {current.canary}; promote or roll it back first."
        )
    example = f" (e.g. examples/prompts/{prompt}/{version}.yaml)"
    _registered(registry_dir, prompt, version, example)
    fields = {"status": "canary", "traffic_percentage": float(percentage)}
    return _change(registry_dir, prompt, {version: fields})


def set_canary_percentage(registry_dir: Path, prompt: str, percentage: float) -> PromptRollout:
    """Set the canary's share; 100 leaves it canary at full traffic (promote finishes the job)."""
    current = rollout_state(registry_dir, prompt)
    if current.canary is None:
        raise ToolkitError(f"{prompt} has no canary version to change.")
    return _change(
        registry_dir, prompt, {current.canary: {"traffic_percentage": float(percentage)}}
    )


def promote(registry_dir: Path, prompt: str) -> PromptRollout:
    """Make the canary the production version and retire the old one. Idempotent: with no
    canary left (already promoted), nothing changes."""
    current = rollout_state(registry_dir, prompt)
    if current.canary is None:
        return current
    return _change(registry_dir, prompt, {current.production: RETIRED, current.canary: PRODUCTION})


def rollback(registry_dir: Path, prompt: str) -> PromptRollout:
    """Retire the canary: every user goes back to production. Idempotent."""
    current = rollout_state(registry_dir, prompt)
    if current.canary is None:
        return current
    return _change(registry_dir, prompt, {current.canary: RETIRED})


def make_production(registry_dir: Path, prompt: str, version: str) -> PromptRollout:
    """Make a registered `version` production at once, in one change (the others retired):
    how a promoted version is reverted to the one before it. Refused while a canary runs."""
    current = rollout_state(registry_dir, prompt)
    if current.production == version:
        return current
    if current.canary is not None:
        raise ToolkitError(f"{prompt} has canary {current.canary}; promote or roll it back first.")
    _registered(registry_dir, prompt, version)
    return _change(registry_dir, prompt, {current.production: RETIRED, version: PRODUCTION})
