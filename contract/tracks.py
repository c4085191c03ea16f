"""The tracks a deployed instance of the service can run as."""

from __future__ import annotations

from enum import StrEnum


class Track(StrEnum):
    """`stable` and `canary` for canaries; `blue` and `green` for blue-green switches."""

    STABLE = "stable"
    CANARY = "canary"
    BLUE = "blue"
    GREEN = "green"


TRACKS: tuple[str, ...] = tuple(t.value for t in Track)
