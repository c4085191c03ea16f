"""Load and validate the whole registry folder; any error names the file and the field."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from contract.assignment import in_canary
from contract.registry.configmap import to_configmap_key
from contract.registry.schema import ModelVersion, PromptVersion
from contract.validation import first_error

ACTIVE = ("production", "canary")


class RegistryError(ValueError):
    """The registry folder is not valid; the message says which file and field to fix."""


@dataclass(frozen=True)
class PromptSet:
    """All versions of one prompt, with its production and (optional) canary version."""

    name: str
    versions: dict[str, PromptVersion]
    production: PromptVersion
    canary: PromptVersion | None

    def assign(self, unit_id: str) -> PromptVersion:
        """The version `unit_id` is served by: sticky, canary buckets first."""
        canary = self.canary
        if canary is not None and in_canary(unit_id, canary.salt, canary.traffic_percentage):
            return canary
        return self.production

    def active(self) -> list[PromptVersion]:
        """Production then canary, the versions that serve traffic."""
        return [self.production] + ([self.canary] if self.canary else [])


@dataclass(frozen=True)
class Registry:
    """A validated snapshot of the registry folder."""

    prompts: dict[str, PromptSet]
    models: dict[str, ModelVersion]
    digest: str
    source: Path = field(compare=False)

    def model_for(self, prompt: PromptVersion) -> ModelVersion:
        """The model version a prompt version is bound to (validated to exist)."""
        return self.models[prompt.model]

    def summary(self) -> dict[str, Any]:
        """Loaded versions, for `/version` and logs."""
        return {
            "digest": self.digest,
            "prompts": {
                name: [
                    {
                        "version": v.version,
                        "status": v.status,
                        "traffic_percentage": v.traffic_percentage,
                        "model": v.model,
                    }
                    for v in sorted(ps.versions.values(), key=lambda v: v.version)
                ]
                for name, ps in sorted(self.prompts.items())
            },
            "models": sorted(self.models),
        }


def _visible(paths: Iterable[Path]) -> list[Path]:
    """Sorted paths without hidden files or folders (editors' and writers' temporary files)."""
    return sorted(p for p in paths if not any(part.startswith(".") for part in p.parts[-3:]))


def folder_digest(root: Path) -> str:
    """SHA-256 over the names and contents of the registry's files (cheap: the folder is small)."""
    digest = hashlib.sha256()
    for path in _visible(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise RegistryError(f"{path}: not valid YAML{line}.") from exc
    if not isinstance(data, dict):
        raise RegistryError(f"{path}: expected a mapping of fields at the top level.")
    return data


def _load_models(root: Path) -> dict[str, ModelVersion]:
    models: dict[str, ModelVersion] = {}
    for config in _visible((root / "models").glob("*/*/config.yaml")):
        name, version = config.parent.parent.name, config.parent.name
        data = _read_yaml(config)
        data.setdefault("name", name)
        data.setdefault("version", version)
        evaluation = config.parent / "evaluation.json"
        if evaluation.is_file():
            try:
                data["evaluation"] = json.loads(evaluation.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise RegistryError(f"{evaluation}: not valid JSON (line {exc.lineno}).") from exc
        try:
            model = ModelVersion.model_validate(data)
        except ValidationError as exc:
            raise RegistryError(f"{config}: {first_error(exc)}.") from exc
        if (model.name, model.version) != (name, version):
            raise RegistryError(
                f"{config}: name/version {model.ref} do not match the folder {name}/{version}."
            )
        models[model.ref] = model
    return models


def _load_prompts(root: Path, models: dict[str, ModelVersion]) -> dict[str, PromptSet]:
    by_name: dict[str, dict[str, PromptVersion]] = {}
    for path in _visible((root / "prompts").glob("*/*.yaml")):
        name, version = path.parent.name, path.stem
        data = _read_yaml(path)
        data.setdefault("name", name)
        data.setdefault("version", version)
        try:
            prompt = PromptVersion.model_validate(data)
        except ValidationError as exc:
            raise RegistryError(f"{path}: {first_error(exc)}.") from exc
        if (prompt.name, prompt.version) != (name, version):
            raise RegistryError(
                f"{path}: name/version {prompt.name}/{prompt.version} do not match the file name."
            )
        model = models.get(prompt.model)
        if prompt.status in ACTIVE:
            if model is None:
                raise RegistryError(
                    f"{path}: field 'model': {prompt.model} is not in registry/models "
                    f"(known: {', '.join(sorted(models)) or 'none'})."
                )
            if model.status == "retired":
                raise RegistryError(f"{path}: field 'model': {prompt.model} is retired.")
        by_name.setdefault(name, {})[version] = prompt

    prompts: dict[str, PromptSet] = {}
    for name, versions in by_name.items():
        folder = root / "prompts" / name
        production = [v for v in versions.values() if v.status == "production"]
        canary = [v for v in versions.values() if v.status == "canary"]
        if len(production) != 1:
            found = ", ".join(v.version for v in production) or "none"
            raise RegistryError(
                f"{folder}: field 'status': exactly one version must be production, found: {found}."
            )
        if len(canary) > 1:
            found = ", ".join(v.version for v in canary)
            raise RegistryError(
                f"{folder}: field 'status': at most one version may be canary (found: {found})."
            )
        prompts[name] = PromptSet(name, versions, production[0], canary[0] if canary else None)
    return prompts


def load_registry(root: Path) -> Registry:
    """Read, validate and return the registry under `root`; raises RegistryError."""
    if not (root / "prompts").is_dir() or not (root / "models").is_dir():
        raise RegistryError(f"{root}: expected prompts/ and models/ folders; set APP_REGISTRY_DIR.")
    for path in _visible(p for p in root.rglob("*") if p.is_file()):
        try:  # every registry that loads fits a Kubernetes ConfigMap (k8s/base)
            to_configmap_key(path.relative_to(root).as_posix())
        except ValueError as exc:
            raise RegistryError(f"{root}/{exc}") from exc
    digest = folder_digest(root)
    models = _load_models(root)
    prompts = _load_prompts(root, models)
    if not prompts:
        raise RegistryError(f"{root / 'prompts'}: no prompt versions found.")
    return Registry(prompts=prompts, models=models, digest=digest, source=root)
