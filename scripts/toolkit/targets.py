"""What a rollout moves: a code version (traffic between tracks) or a prompt/model version
(registry traffic inside the service). Both expose the same operations to the monitor,
`promote` and `rollback`, and both name the two arms the judge compares."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import httpx

from contract.http import HEALTH_PATH
from contract.metrics import APP_VERSION, PROMPT, PROMPT_VERSION, TRACK
from contract.tracks import Track
from scripts.toolkit import registry_ops
from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.metrics import Arm
from scripts.toolkit.registry_store import RegistryStore
from scripts.toolkit.traffic.base import TrafficBackend


class RolloutOutcome(StrEnum):
    """How a rollout ended."""

    PROMOTED = "promoted"
    ROLLED_BACK = "rolled back"


@dataclass(frozen=True)
class RolloutIdentity:
    """Names one rollout, to resume the right saved state: what kind of target, its subject
    (the traffic backend, or the prompt) and the candidate version (None: nothing rolls out)."""

    kind: str
    subject: str
    candidate: str | None


class RolloutTarget(Protocol):
    """One rollout's subject."""

    kind: str

    def canary_percent(self) -> float:
        """Share of traffic the canary serves now (0: no canary)."""

    def arms(self) -> tuple[Arm, Arm]:
        """The stable and canary arms, for the metric source."""

    def set_percent(self, percent: float, *, per_request: bool = False) -> None:
        """Give the canary `percent` of traffic (code canaries: `per_request` assigns each
        request by chance; prompt canaries are always sticky by user)."""

    def finish(self) -> None:
        """Make the canary the new stable (idempotent)."""

    def rollback(self) -> None:
        """Back to the last good version (idempotent; never needs the canary healthy)."""

    def describe(self) -> dict[str, Any]:
        """What is rolling out, for the decision record."""

    def summary(self) -> str:
        """One sentence on what serves now, read afresh."""

    def identity(self) -> RolloutIdentity:
        """Names this rollout."""

    def canary_down(self) -> str | None:
        """Why no canary instance can be reached (each refuses connections), or None; a check
        that needs no traffic, so a dead canary is caught at any request rate."""


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
    # The local platform's router: its /-/metrics counts the requests each track failed.
    router_url: str | None = None

    def canary_percent(self) -> float:
        return self.backend.state().canary_weight

    def arms(self) -> tuple[Arm, Arm]:
        """Arms by the `track` label (and the track's version when known), each read from
        every instance: a rating is counted where it arrives, labelled with the track that
        answered, so stable's /metrics carries canary series too (Prometheus needs no URL)."""
        urls = tuple(metrics_url(u) for u in [*self.stable_urls, *self.canary_urls])
        urls += (f"{self.router_url.rstrip('/')}/-/metrics",) if self.router_url else ()
        versions = self.backend.state().versions

        def arm(track: Track) -> Arm:
            version = versions.get(track)
            labels = {TRACK: track.value, **({APP_VERSION: version} if version else {})}
            return Arm(track.value, labels, urls)

        return arm(Track.STABLE), arm(Track.CANARY)

    def set_percent(self, percent: float, *, per_request: bool = False) -> None:
        self.backend.set_canary_weight(percent, per_request=per_request)

    def finish(self) -> None:
        self.backend.promote_canary()

    def rollback(self) -> None:
        """A canary: all traffic to stable, then retire it. After a blue-green switch (no
        canary): all traffic back to the track that served before."""
        state = self.backend.state()
        if Track.CANARY in state.versions:
            self.backend.rollback_canary()
        elif state.previous is not None:
            self.backend.switch_back()
        elif state.active not in (None, Track.STABLE):
            raise ToolkitError(
                f"{state.active} serves all traffic and no track it took over from is recorded; "
                "name the one to go back to with `python -m scripts.rollback --switch <track>`."
            )

    def describe(self) -> dict[str, Any]:
        return {"target": self.kind, "backend": self.backend.name, **self.backend.state().to_dict()}

    def summary(self) -> str:
        return self.backend.state().summary()

    def identity(self) -> RolloutIdentity:
        candidate = self.backend.state().versions.get(Track.CANARY)
        return RolloutIdentity(self.kind, self.backend.name, candidate)

    def canary_down(self) -> str | None:
        """Every known canary URL refuses connections (None when no URL is known)."""
        if not self.canary_urls:
            return None
        for url in self.canary_urls:
            try:
                httpx.get(f"{url.rstrip('/')}{HEALTH_PATH}", timeout=2.0)
            except httpx.ConnectError:
                continue
            except httpx.HTTPError:
                return None  # it answers, slowly or badly: the metrics judge that
            return None
        return f"every canary instance refuses connections ({', '.join(self.canary_urls)})"


@dataclass
class PromptTarget:
    """A prompt (and the model version it binds) rolled out by the registry's canary share, in a
    registry folder or (on a cluster) the registry ConfigMap: `store` says which."""

    store: RegistryStore
    prompt: str
    urls: list[str] = field(default_factory=list)
    kind: str = "prompt"

    def _state(self) -> registry_ops.PromptRollout:
        return self.store.read(lambda folder: registry_ops.rollout_state(folder, self.prompt))

    def canary_percent(self) -> float:
        return self._state().canary_percentage

    def arms(self) -> tuple[Arm, Arm]:
        """Arms by prompt version, read from every instance of the service."""
        state = self._state()
        if state.canary is None:
            raise ToolkitError(f"{self.prompt} has no canary version in {self.store.where}.")
        urls = tuple(metrics_url(u) for u in self.urls)
        return (
            Arm(Track.STABLE, {PROMPT: self.prompt, PROMPT_VERSION: state.production}, urls),
            Arm(Track.CANARY, {PROMPT: self.prompt, PROMPT_VERSION: state.canary}, urls),
        )

    def set_percent(self, percent: float, *, per_request: bool = False) -> None:
        """Set the canary's traffic_percentage (100 stays canary until finish); assignment in
        the service is by user, whatever `per_request` says."""
        self.store.change(
            lambda folder: registry_ops.set_canary_percentage(folder, self.prompt, percent)
        )

    def finish(self) -> None:
        """Canary becomes production; the old production version is retired."""
        self.store.change(lambda folder: registry_ops.promote(folder, self.prompt))

    def rollback(self) -> None:
        self.retire_canary()

    def retire_canary(self) -> bool:
        """Retire the canary (bounded in time on a cluster); whether there was one."""

        def retire(folder: Path) -> bool:
            had = registry_ops.rollout_state(folder, self.prompt).canary is not None
            registry_ops.rollback(folder, self.prompt)
            return had

        return self.store.change(retire, rollback=True)

    def describe(self) -> dict[str, Any]:
        state = self._state()
        return {
            "target": self.kind,
            "prompt": self.prompt,
            "production": state.production,
            "canary": state.canary,
            "canary_percentage": state.canary_percentage,
        }

    def summary(self) -> str:
        """The production version, and the canary's share if there is one."""
        state = self._state()
        if state.canary is None:
            return f"{self.prompt} {state.production} serves all traffic"
        return (
            f"{self.prompt} {state.production} serves {100 - state.canary_percentage:g}%, "
            f"canary {state.canary} {state.canary_percentage:g}%"
        )

    def identity(self) -> RolloutIdentity:
        return RolloutIdentity(self.kind, self.prompt, self._state().canary)

    def canary_down(self) -> str | None:
        """A prompt canary runs inside every instance: it is down only when they all are."""
        return None
