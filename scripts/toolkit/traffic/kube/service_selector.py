"""The `service-selector` backend: blue-green by the `track` the Service `ai-service` selects.

A switch sends every new connection to one color at once: it waits until that color's Service
has a ready endpoint, then changes the selector and records the color that served before (the
annotation `ai-rollout-template/previous`) in the same merge patch, pinned by the
resourceVersion it read (a concurrent change answers 409: re-read, try again). Switching back
restores the recorded color and forgets it, so a second rollback changes nothing.
"""

from __future__ import annotations

from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.platform.tracks import SWITCHABLE
from scripts.toolkit.traffic.base import TrafficState
from scripts.toolkit.traffic.kube.client import MERGE_PATCH, Conflict, Json, Kube, NotFound
from scripts.toolkit.traffic.kube.common import KeepsState, first_move
from scripts.toolkit.traffic.kube.workloads import (
    DECISION,
    PREVIOUS,
    TRACK_LABEL,
    Names,
    annotate,
    now_text,
    resource_version,
    rollout_notes,
    versions_of,
    wait_endpoints,
)

ATTEMPTS = 10


class ServiceSelectorBackend(KeepsState):
    """Blue-green: the Service `<app>` selects one color's pods."""

    name = "service-selector"

    def __init__(self, kube: Kube, names: Names) -> None:
        self.kube = kube
        self.names = names

    def state_path(self) -> str:
        return self.kube.path("v1", "services", self.names.app)

    def _read(self) -> Json:
        try:
            return self.kube.get(self.state_path())
        except NotFound:
            raise ToolkitError(
                f"Service {self.names.app} is not in namespace {self.kube.namespace}; apply an "
                "overlay with the blue-green component there, or fix --namespace/--app."
            ) from None

    def _active(self, service: Json) -> str:
        selector = (service.get("spec") or {}).get("selector") or {}
        active = selector.get(TRACK_LABEL)
        if not active:
            raise ToolkitError(
                f"Service {self.names.app} selects no `{TRACK_LABEL}`: it is not a blue-green "
                "switch; apply the blue-green component, or use another --backend."
            )
        return str(active)

    def state(self) -> TrafficState:
        service = self._read()
        active = self._active(service)
        versions = versions_of(self.kube, self.names, tuple(SWITCHABLE))
        return TrafficState({active: 100.0}, versions, rollout_notes(service).get(PREVIOUS))

    def _select(self, track: str, previous: str | None, decision: str) -> bool:
        """Select `track` and record `previous` (None: forget); False when it was selected."""
        for _ in range(ATTEMPTS):
            service = self._read()
            active = self._active(service)
            notes = rollout_notes(service)
            if active == track and notes.get(PREVIOUS) == previous:
                return False
            body = annotate({PREVIOUS: previous, DECISION: decision, "switched-at": now_text()})
            body["metadata"]["resourceVersion"] = resource_version(service)
            body["spec"] = {"selector": {TRACK_LABEL: track}}
            try:
                self.kube.patch(self.state_path(), body, content_type=MERGE_PATCH, guarded=True)
            except Conflict:
                continue
            if not self.kube.dry_run and self._active(self._read()) != track:
                raise ToolkitError(f"Service {self.names.app} did not keep selector {track}.")
            return active != track
        raise ToolkitError(f"Service {self.names.app} kept changing during the switch; run again.")

    def switch(self, track: str) -> TrafficState:
        """All traffic to `track` once its pods are ready; the color before is remembered."""
        if track not in SWITCHABLE:
            raise ToolkitError(f"--switch takes {', '.join(SWITCHABLE)}, not {track!r}.")
        active = self._active(self._read())
        if active != track:
            wait_endpoints(self.kube, self.names.service(track), self.names.deployment(track))
            self._select(track, active, f"switched to {track}")
        return self.state()

    def switch_back(self) -> TrafficState:
        return self.rollback()[1]

    def rollback(self) -> tuple[bool, TrafficState]:
        """Back to the remembered color, as the first write (bounded by the API timeout); the
        color being left is not read."""

        def move() -> tuple[bool, TrafficState]:
            service = self._read()
            previous = rollout_notes(service).get(PREVIOUS)
            if previous is None:
                return False, TrafficState({self._active(service): 100.0})
            moved = self._select(previous, None, f"rolled back to {previous}")
            return moved, TrafficState({previous: 100.0})

        return first_move(self.kube, "switching back", move)

    def set_canary_weight(self, percent: float, *, per_request: bool = False) -> TrafficState:
        raise ToolkitError(
            "the service-selector backend switches whole colors: use `--switch green` (or "
            "blue), or --backend gateway-api/replicas for a canary."
        )

    def promote_canary(self) -> TrafficState:
        return self.set_canary_weight(100)

    def rollback_canary(self) -> TrafficState:
        return self.rollback()[1]
