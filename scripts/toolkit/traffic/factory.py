"""Build the traffic backend named on the command line or in the environment."""

from __future__ import annotations

from pathlib import Path

from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.traffic.base import TrafficBackend

BACKENDS = ("local",)


def build_backend(name: str, *, platform_dir: Path) -> TrafficBackend:
    """The backend `name`; its options come from the arguments (more backends: DEPLOYING.md)."""
    if name == "local":
        from scripts.toolkit.traffic.local import LocalBackend  # noqa: PLC0415  # optional part

        backend: TrafficBackend = LocalBackend(platform_dir)
        return backend
    raise ToolkitError(f"unknown traffic backend {name!r}; choose one of: {', '.join(BACKENDS)}.")
