"""The `local` traffic backend: the local platform's router (`python -m scripts.local_platform`).

Each operation is the one of `platform/tracks.py` (idempotent, see `platform/operations.py`).
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
        return tracks.traffic(self.platform_dir)

    def set_canary_weight(self, percent: float, *, per_request: bool = False) -> TrafficState:
        return tracks.set_canary_weight(self.platform_dir, percent, per_request=per_request)

    def promote_canary(self) -> TrafficState:
        return tracks.promote_canary(self.platform_dir, timeout=self.timeout)

    def rollback_canary(self) -> TrafficState:
        return tracks.rollback_canary(self.platform_dir)

    def switch(self, track: str) -> TrafficState:
        return tracks.switch(self.platform_dir, track)

    def switch_back(self) -> TrafficState:
        return tracks.switch_back(self.platform_dir)
