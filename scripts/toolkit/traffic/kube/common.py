"""What the cluster backends share: the rollback's time bound, and the monitor's state kept on
the object each backend moves."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from scripts.toolkit.cli import EXIT_TRAFFIC_UNKNOWN, ToolkitError
from scripts.toolkit.traffic.kube.client import MERGE_PATCH, Json, Kube, NotConfirmed, Unreachable
from scripts.toolkit.traffic.kube.workloads import MONITOR, Names, annotate, rollout_notes

T = TypeVar("T")
# An annotation's value counts towards the object's 256 KiB of annotations: the monitor's
# state keeps its last checks only (the chart of a resumed rollout starts from them).
MONITOR_STATE_LIMIT = 100_000


@contextmanager
def bounded(kube: Kube, seconds: float) -> Iterator[None]:
    """Every request inside shares one deadline, `seconds` from now."""
    before = kube.deadline
    kube.deadline = time.monotonic() + seconds
    try:
        yield
    finally:
        kube.deadline = before


def first_move(kube: Kube, what: str, move: Callable[[], T]) -> T:
    """Run a rollback's traffic move within the API timeout; when the cluster cannot be reached
    (or the move not confirmed) in time, say the traffic state is unknown (exit 4), never
    success nor a plain failure."""
    try:
        with bounded(kube, kube.api_timeout):
            return move()
    except (Unreachable, NotConfirmed) as exc:
        raise ToolkitError(
            f"traffic state unknown: {what} could not be confirmed ({exc.message}); traffic may "
            "still reach the canary: run the rollback again until it succeeds.",
            exit_code=EXIT_TRAFFIC_UNKNOWN,
        ) from exc


class KeepsState:
    """A backend whose rollout state is annotations on one object (`state_path`)."""

    kube: Kube
    names: Names

    def state_path(self) -> str:
        raise NotImplementedError

    def _state_object(self) -> Json:
        return self.kube.get(self.state_path())

    def assignment(self) -> str:
        """How the split assigns: each request (a Service spreads connections over pods)."""
        return "request"

    def rollout_annotations(self) -> dict[str, str]:
        """The rollout's state (sha, step, started-at, decision, ...), from the cluster."""
        return rollout_notes(self._state_object())

    def load_monitor_state(self) -> str | None:
        """The monitor's saved state, as the last runner left it (None: none)."""
        return self.rollout_annotations().get(MONITOR)

    def save_monitor_state(self, text: str) -> None:
        """Keep the monitor's state on the object (its latest checks, within the limit)."""
        if self.kube.dry_run:
            return
        data = json.loads(text)
        history = data.get("history") or []
        keep = len(history)
        compact = json.dumps(data, separators=(",", ":"))
        while len(compact) > MONITOR_STATE_LIMIT and keep > 0:
            keep //= 2
            data["history"] = history[-keep:] if keep else []
            compact = json.dumps(data, separators=(",", ":"))
        self.kube.patch(self.state_path(), annotate({MONITOR: compact}), content_type=MERGE_PATCH)
