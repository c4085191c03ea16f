"""What a rollout moves: a code version (traffic between tracks) or a prompt/model version
(registry traffic inside the service). Both expose the same operations to the monitor,
`promote` and `rollback`, and both name the two arms the judge compares."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from scripts.toolkit import registry_ops
from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.metrics import Arm
from scripts.toolkit.traffic.base import TrafficBackend


class RolloutTarget(Protocol):
    """One rollout's subject."""

    kind: str

    def canary_percent(self) -> float:
        """Share of traffic the canary serves now (0: no canary)."""

    def arms(self) -> tuple[Arm, Arm]:
        """The stable and canary arms, for the metric source."""

    def set_percent(self, percent: float) -> None:
        """Give the canary `percent` of traffic."""

    def finish(self) -> None:
        """Make the canary the new stable (idempotent)."""

    def rollback(self) -> None:
        """Send everyone back to stable (idempotent; never needs the canary healthy)."""

    def describe(self) -> dict[str, Any]:
        """What is rolling out, for the decision record."""

    def identity(self) -> str:
        """Names this rollout (target and candidate), to resume the right saved state."""


def metrics_url(base: str) -> str:
    """`<base>/metrics` unless `base` already names the metrics path."""
    return base if base.rstrip("/").endswith("/metrics") else base.rstrip("/") + "/metrics"


@dataclass
class CodeTarget:
    """A new image or git ref on the `canary` track, behind a traffic backend."""

    backend: TrafficBackend
    stable_urls: list[str] = field(default_factory=list)
    canary_urls: list[str] = field(default_factory=list)
    kind: str = "code"

    def canary_percent(self) -> float:
        """The backend's canary weight."""
        return self.backend.state().canary_weight

    def arms(self) -> tuple[Arm, Arm]:
        """Arms by `track` label; scraped at the given URLs (Prometheus needs none)."""
        return (
            Arm("stable", {"track": "stable"}, tuple(metrics_url(u) for u in self.stable_urls)),
            Arm("canary", {"track": "canary"}, tuple(metrics_url(u) for u in self.canary_urls)),
        )

    def set_percent(self, percent: float) -> None:
        """Shift traffic through the backend."""
        self.backend.set_canary_weight(percent)

    def finish(self) -> None:
        """Promote the canary's version to stable."""
        self.backend.promote_canary()

    def rollback(self) -> None:
        """All traffic to stable, then retire the canary."""
        self.backend.rollback_canary()

    def describe(self) -> dict[str, Any]:
        """Backend state."""
        return {"target": "code", **self.backend.state().to_dict()}

    def identity(self) -> str:
        """The canary track's version."""
        return f"code:{self.backend.state().versions.get('canary', '')}"


@dataclass
class PromptTarget:
    """A prompt (and the model version it binds) rolled out by the registry's canary share."""

    registry_dir: Path
    prompt: str
    urls: list[str] = field(default_factory=list)
    kind: str = "prompt"

    def _state(self) -> registry_ops.PromptRollout:
        return registry_ops.rollout_state(self.registry_dir, self.prompt)

    def canary_percent(self) -> float:
        """The canary version's traffic_percentage."""
        return self._state().canary_percentage

    def arms(self) -> tuple[Arm, Arm]:
        """Arms by prompt version, read from every instance of the service."""
        state = self._state()
        if state.canary is None:
            raise ToolkitError(f"{self.prompt} has no canary version in {self.registry_dir}.")
        urls = tuple(metrics_url(u) for u in self.urls)
        return (
            Arm("stable", {"prompt": self.prompt, "prompt_version": state.production}, urls),
            Arm("canary", {"prompt": self.prompt, "prompt_version": state.canary}, urls),
        )

    def set_percent(self, percent: float) -> None:
        """Set the canary's traffic_percentage (100 stays canary until finish)."""
        registry_ops.set_canary_percentage(self.registry_dir, self.prompt, percent)

    def finish(self) -> None:
        """Canary becomes production; the old production version is retired."""
        registry_ops.promote(self.registry_dir, self.prompt)

    def rollback(self) -> None:
        """Retire the canary version."""
        registry_ops.rollback(self.registry_dir, self.prompt)

    def describe(self) -> dict[str, Any]:
        """Production and canary versions."""
        state = self._state()
        return {
            "target": "prompt",
            "prompt": self.prompt,
            "production": state.production,
            "canary": state.canary,
            "canary_percentage": state.canary_percentage,
        }

    def identity(self) -> str:
        """The prompt and its canary version."""
        return f"prompt:{self.prompt}:{self._state().canary or ''}"
