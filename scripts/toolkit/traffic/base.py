"""The interface every traffic backend implements; each operation is idempotent.

Tracks: `stable` and `canary` for canary rollouts, `blue` and `green` for blue-green. Weights
are percentages per track that add up to 100. Every operation returns the state it leaves,
can be re-run after an interruption and converges to the same result, and `rollback_canary`
never needs the canary to be healthy (it moves traffic first, then cleans up).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


@dataclass
class TrafficState:
    """Where traffic goes now, and which version each track runs."""

    backend: str
    weights: dict[str, float]
    versions: dict[str, str] = field(default_factory=dict)
    active: str | None = None  # blue-green: the color that serves

    @property
    def canary_weight(self) -> float:
        """The canary's share of traffic, percent (0 when there is no canary)."""
        return self.weights.get("canary", 0.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


class TrafficBackend(Protocol):
    """Moves traffic between tracks of the service."""

    name: str

    def state(self) -> TrafficState:
        """The current state, read from the platform (not from a cache)."""

    def set_canary_weight(self, percent: float) -> TrafficState:
        """Send `percent` of traffic to the canary, the rest to stable."""

    def promote_canary(self) -> TrafficState:
        """Make the canary's version the stable one, then retire the canary (weight 0)."""

    def rollback_canary(self) -> TrafficState:
        """Send all traffic to stable at once, then retire the canary; works with a dead canary."""

    def switch(self, color: str) -> TrafficState:
        """Blue-green: send all traffic to `color` (`blue` or `green`)."""
