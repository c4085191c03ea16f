"""The `local` traffic backend: the local platform's router (`python -m scripts.local_platform`).

Every operation is idempotent and re-runnable after an interruption (see
`scripts/toolkit/platform/operations.py`); `rollback_canary` moves traffic in one router change
before anything else and needs neither the canary nor any other operation to finish first.
"""

from __future__ import annotations

from pathlib import Path

from scripts.toolkit.platform import tracks
from scripts.toolkit.traffic.base import TrafficState


class LocalBackend:
    """Traffic between the tracks of the local platform whose state folder is `state_dir`."""

    name = "local"

    def __init__(self, state_dir: Path, *, timeout: float = 60.0) -> None:
        self.state_dir = state_dir
        self.timeout = timeout  # for a replacement instance to become ready

    def state(self) -> TrafficState:
        """Weights from the router, versions from the state file."""
        return _state(tracks.traffic(self.state_dir))

    def set_canary_weight(self, percent: float) -> TrafficState:
        """`percent` of units to the canary, the rest to stable."""
        return _state(tracks.set_canary_weight(self.state_dir, percent))

    def promote_canary(self) -> TrafficState:
        """Stable takes the canary's version without dropping a request; the canary retires."""
        return _state(tracks.promote_canary(self.state_dir, timeout=self.timeout))

    def rollback_canary(self) -> TrafficState:
        """The canary's weight to stable first (one change), then the canary stops."""
        return _state(tracks.rollback_canary(self.state_dir))

    def switch(self, color: str) -> TrafficState:
        """Blue-green: all traffic to `color` at once."""
        return _state(tracks.switch(self.state_dir, color))


def _state(traffic: tracks.Traffic) -> TrafficState:
    return TrafficState(
        backend=LocalBackend.name,
        weights=dict(traffic.table.weights),
        versions=traffic.versions,
        active=traffic.active,
    )
