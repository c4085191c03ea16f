"""The interface every traffic backend implements; each operation is idempotent.

Tracks: `stable` and `canary` for canary rollouts, `blue` and `green` for blue-green. Weights
are percentages per track that add up to 100. Every operation returns the state it leaves,
can be re-run after an interruption and converges to the same result, and `rollback_canary`
never needs the canary to be healthy (it moves traffic first, then cleans up).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from contract.tracks import Track


@dataclass(frozen=True)
class TrafficState:
    """Where traffic goes now, which version each track runs, and (after a blue-green switch)
    the track that served all traffic before it."""

    weights: dict[str, float]
    versions: dict[str, str] = field(default_factory=dict)
    previous: str | None = None

    @property
    def canary_weight(self) -> float:
        """The canary's share of traffic, percent (0 when there is no canary)."""
        return self.weights.get(Track.CANARY, 0.0)

    @property
    def active(self) -> str | None:
        """The track that takes all traffic, if one does."""
        return next((t for t, w in self.weights.items() if w >= 100), None)

    def summary(self) -> str:
        """One sentence: who serves, with versions."""

        def named(track: str) -> str:
            version = self.versions.get(track)
            return f"{track} ({version})" if version else track

        if self.active is not None:
            return f"{named(self.active)} serves all traffic"
        shares = ", ".join(f"{named(t)} {w:g}%" for t, w in self.weights.items() if w > 0)
        return f"traffic: {shares or 'none'}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "weights": self.weights,
            "versions": self.versions,
            "active": self.active,
            "previous": self.previous,
        }


class TrafficBackend(Protocol):
    """Moves traffic between tracks of the service."""

    name: str

    def state(self) -> TrafficState:
        """The current state, read from the platform (not from a cache)."""

    def set_canary_weight(self, percent: float, *, per_request: bool = False) -> TrafficState:
        """Send `percent` of traffic to the canary, the rest to stable: sticky by user, or each
        request by chance (`per_request`, the policy's `code_assignment: request`)."""

    def promote_canary(self) -> TrafficState:
        """Make the canary's version the stable one, then retire the canary (weight 0)."""

    def rollback_canary(self) -> TrafficState:
        """Send all traffic to stable at once, then retire the canary; works with a dead canary."""

    def switch(self, track: str) -> TrafficState:
        """Blue-green: send all traffic to `track` (`blue`, `green`, or back to `stable`),
        remembering the track that served before."""

    def switch_back(self) -> TrafficState:
        """Undo the last switch: all traffic to `previous`, then forget it (idempotent)."""


@runtime_checkable
class RollsBackFirst(Protocol):
    """A backend whose rollback moves traffic as its first write, bounded in time (the cluster
    backends): the caller does not read the state first."""

    def rollback(self) -> tuple[bool, TrafficState]:
        """Back to the last good version: whether anything moved, and the state confirmed."""


@runtime_checkable
class KeepsRolloutState(Protocol):
    """A backend that keeps the rollout's state where it runs (the cluster), so a runner on
    another machine resumes it; `assignment` says how the traffic split assigns (`request`,
    or `user` when the platform keeps a user on one version)."""

    def assignment(self) -> str: ...

    def load_monitor_state(self) -> str | None: ...

    def save_monitor_state(self, text: str) -> None: ...
