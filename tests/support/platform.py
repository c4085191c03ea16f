"""The local platform for end-to-end tests: one running platform, and the shipped policy on a
fast clock (the statistics are the shipped ones; only the clock and sample counts shrink)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from scripts.toolkit.platform import lifecycle
from scripts.toolkit.policy import DEFAULT_POLICY
from scripts.toolkit.processes import free_port

FAST_CLOCK = {
    "steps": [20, 50, 100],
    "interval_seconds": 1,
    "min_step_seconds": 2,
    "max_step_seconds": 45,
    "max_missing_seconds": 5,
    "min_samples": 60,
}


def fast_policy(path: Path, **changes: Any) -> Path:
    """The shipped policy with FAST_CLOCK (and `changes`), written to `path`."""
    data = yaml.safe_load(DEFAULT_POLICY.read_text(encoding="utf-8"))
    data.update({**FAST_CLOCK, **changes})
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@contextlib.contextmanager
def running_platform(state_dir: Path, **options: Any) -> Iterator[Path]:
    """`up` without Prometheus (tests scrape) on a free port; `down` whatever happens."""
    lifecycle.up(state_dir, port=free_port(), prometheus_mode="off", **options)
    try:
        yield state_dir
    finally:
        lifecycle.down(state_dir)
