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
    """Traffic between the tracks of the local platform whose folder is `platform_dir`."""

    name = "local"

    def __init__(self, platform_dir: Path, *, timeout: float = 60.0) -> None:
        self.platform_dir = platform_dir
        self.timeout = timeout  # for a replacement instance to become ready

    def state(self) -> TrafficState:
        """Weights from the router, versions from the state file."""
        return tracks.traffic(self.platform_dir)

    def set_canary_weight(self, percent: float) -> TrafficState:
        """`percent` of units to the canary, the rest to stable."""
        return tracks.set_canary_weight(self.platform_dir, percent)

    def promote_canary(self) -> TrafficState:
        """Stable takes the canary's version without dropping a request; the canary retires."""
        return tracks.promote_canary(self.platform_dir, timeout=self.timeout)

    def rollback_canary(self) -> TrafficState:
        """The canary's weight to stable first (one change), then the canary stops."""
        return tracks.rollback_canary(self.platform_dir)

    def switch(self, track: str) -> TrafficState:
        """Blue-green: all traffic to `track` at once."""
        return tracks.switch(self.platform_dir, track)

    def switch_back(self) -> TrafficState:
        """All traffic back to the track that served before the last switch."""
        return tracks.switch_back(self.platform_dir)
