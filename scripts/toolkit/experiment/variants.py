"""The two versions under test and the canary's share: from the registry, the service or options."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.evaluation.arms import service_info
from scripts.toolkit.metrics import Arm
from scripts.toolkit.registry_ops import rollout_state


@dataclass(frozen=True)
class Variants:
    """The two versions of a prompt under test and the canary's configured share."""

    prompt: str
    production: str
    canary: str
    canary_percentage: float
    source: str

    def arms(self) -> list[Arm]:
        return [
            Arm(name=v, labels={"prompt": self.prompt, "prompt_version": v})
            for v in (self.production, self.canary)
        ]


def variants_from_registry(registry_dir: Path, prompt: str) -> Variants:
    """Production and canary as the registry folder says."""
    state = rollout_state(registry_dir, prompt)
    if state.canary is None:
        raise ToolkitError(
            f"{prompt} has no canary version in {registry_dir}: there is no experiment to report."
        )
    return Variants(prompt, state.production, state.canary, state.canary_percentage, "registry")


def variants_from_service(url: str, prompt: str, *, timeout: float = 10.0) -> Variants:
    """Production and canary as the running service's `/version` says."""
    info = service_info(url, prompt, timeout=timeout)
    canary = next((v for v, status in info.versions.items() if status == "canary"), None)
    if canary is None or not info.production:
        raise ToolkitError(
            f"{prompt} has no canary version at {url}: there is no experiment to report."
        )
    return Variants(prompt, info.production, canary, info.traffic[canary], "service")


def resolve_variants(
    *,
    prompt: str,
    registry_dir: Path | None,
    url: str | None,
    production_version: str | None,
    canary_version: str | None,
    canary_percentage: float | None,
) -> Variants:
    """The registry's (else the service's) variants, each part overridden by the options."""
    found = None
    if registry_dir is not None:
        found = variants_from_registry(registry_dir, prompt)
    elif url:
        found = variants_from_service(url, prompt)
    production = production_version or (found.production if found else None)
    canary = canary_version or (found.canary if found else None)
    percentage = canary_percentage or (found.canary_percentage if found else None)
    if not (production and canary and percentage):
        raise ToolkitError(
            "name the experiment: --url or --registry-dir, or --production-version, "
            "--canary-version and --canary-percentage."
        )
    source = found.source if found else "options"
    return Variants(prompt, production, canary, percentage, source)
