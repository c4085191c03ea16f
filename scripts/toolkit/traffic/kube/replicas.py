"""The `replicas` backend: a canary by replica ratio, for clusters without Gateway API.

The Service `ai-service` selects every track's pods, so the canary's share of traffic is its
share of the ready pods. The number of pods of both tracks together stays what stable had when
the rollout began (kept as an annotation on the canary Deployment): a step scales the canary up,
waits until its pods are ready (naming the ones that are not), then scales stable down. Shares
are whole pods: the state reports the share the replicas give, not the one asked for. A
rollback scales the canary to zero first (its pods leave the Service's endpoints), then gives
stable its pods back.

A HorizontalPodAutoscaler on either Deployment would set their replicas back (the base's HPA
scales `ai-service`): a step stops first with one sentence when one targets them (the rollback
does not look: it scales the canary to zero whatever else runs).
"""

from __future__ import annotations

import math
import sys

from contract.tracks import Track
from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.traffic.base import TrafficState
from scripts.toolkit.traffic.kube.client import Json, Kube
from scripts.toolkit.traffic.kube.common import KeepsState, first_move
from scripts.toolkit.traffic.kube.workloads import (
    APPS,
    DECISION,
    REPLICAS,
    STARTED_AT,
    STEP,
    Names,
    app_image,
    now_text,
    read_deployment,
    replicas,
    rollout_notes,
    scale,
    set_image,
    tag,
    wait_rolled_out,
)

AUTOSCALING = "autoscaling/v2"


class ReplicasBackend(KeepsState):
    """Traffic between stable and canary by their share of the Service's pods."""

    name = "replicas"

    def __init__(self, kube: Kube, names: Names) -> None:
        self.kube = kube
        self.names = names
        self.stable = names.deployment(Track.STABLE)
        self.canary = names.deployment(Track.CANARY)

    def state_path(self) -> str:
        return self.kube.path(APPS, "deployments", self.canary)

    def _read(self) -> tuple[Json, Json]:
        stable = read_deployment(self.kube, self.stable)
        canary = read_deployment(self.kube, self.canary)
        return stable, canary

    def _pods(self, stable: Json, canary: Json) -> int:
        """The rollout's number of pods: remembered, else what both tracks have now."""
        kept = rollout_notes(canary).get(REPLICAS)
        return int(kept) if kept else replicas(stable) + replicas(canary)

    def _not_autoscaled(self) -> None:
        """Stop when a HorizontalPodAutoscaler scales stable or the canary."""
        listed = self.kube.get(self.kube.path(AUTOSCALING, "horizontalpodautoscalers"))
        for hpa in listed.get("items") or []:
            target = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
            if target.get("kind") == "Deployment" and target.get("name") in (
                self.stable,
                self.canary,
            ):
                raise ToolkitError(
                    f"HorizontalPodAutoscaler {hpa['metadata']['name']} scales Deployment "
                    f"{target['name']} and would undo the replicas backend's changes to it; use "
                    "--backend gateway-api, or remove the HPA from the overlay you roll out by "
                    "replicas (k8s/components/canary/README.md)."
                )

    def state(self) -> TrafficState:
        stable, canary = self._read()
        total = replicas(stable) + replicas(canary)
        share = round(replicas(canary) * 100 / total, 4) if total else 0.0
        versions: dict[str, str] = {Track.STABLE: tag(app_image(stable))}
        # A canary deployed without pods yet (its pods start with the first step) is the
        # candidate already, so a monitor names the same rollout before and after that step.
        if replicas(canary) > 0 or app_image(canary) != app_image(stable):
            versions[Track.CANARY] = tag(app_image(canary))
        return TrafficState({Track.STABLE: 100 - share, Track.CANARY: share}, versions)

    def set_canary_weight(self, percent: float, *, per_request: bool = False) -> TrafficState:
        """The canary's pods nearest `percent` of the rollout's pods (at least one while the
        share is above 0, at most all but one below 100)."""
        if not math.isfinite(percent) or not 0 <= percent <= 100:
            raise ToolkitError(f"the canary weight must be between 0 and 100, not {percent:g}.")
        self._not_autoscaled()
        stable, canary = self._read()
        pods = self._pods(stable, canary)
        if pods < 2 and 0 < percent < 100:
            raise ToolkitError(
                f"{self.stable} has {pods} pod: a share needs at least 2 pods to split; raise "
                "its replicas or use --backend gateway-api."
            )
        wanted = min(max(round(pods * percent / 100), 1 if percent > 0 else 0), pods)
        if percent < 100:
            wanted = min(wanted, pods - 1)
        notes: dict[str, str | None] = {REPLICAS: str(pods), STEP: f"{percent:g}"}
        notes[DECISION] = "step"
        if not rollout_notes(canary).get(STARTED_AT):
            notes[STARTED_AT] = now_text()
        before = replicas(canary)
        scale(self.kube, self.canary, wanted, notes)
        if wanted > before:
            try:
                wait_rolled_out(self.kube, self.canary)
            except ToolkitError:
                scale(self.kube, self.canary, before)  # no traffic to pods that never serve
                raise
        scale(self.kube, self.stable, pods - wanted)
        return self.state()

    def promote_canary(self) -> TrafficState:
        """Stable takes the canary's image with all the rollout's pods (rolled out and ready),
        then the canary goes to zero. Idempotent."""
        stable, canary = self._read()
        pods = self._pods(stable, canary)
        image = app_image(canary)
        if app_image(stable) != image and replicas(canary) > 0:
            set_image(self.kube, self.stable, image, {})
        # Stable serves everyone before the canary goes (a re-run after an interruption too).
        scale(self.kube, self.stable, pods)
        wait_rolled_out(self.kube, self.stable)
        done = {DECISION: "promoted", STEP: None, STARTED_AT: None, REPLICAS: None}
        scale(self.kube, self.canary, 0, done)
        return self.state()

    def rollback(self) -> tuple[bool, TrafficState]:
        """The canary to zero pods as the first write (bounded by the API timeout), then stable
        gets the rollout's pods back."""

        def move() -> tuple[bool, int]:
            canary = read_deployment(self.kube, self.canary)
            kept = rollout_notes(canary).get(REPLICAS)
            notes: dict[str, str | None] = {DECISION: "rolled back", STEP: "0", REPLICAS: None}
            scale(self.kube, self.canary, 0, notes)
            return replicas(canary) > 0, int(kept) if kept else 0

        moved, pods = first_move(self.kube, "scaling the canary to zero", move)
        try:
            if pods:
                scale(self.kube, self.stable, pods)
        except ToolkitError as exc:  # traffic is on stable; its pods come back by the HPA
            print(f"warning: stable was not scaled back up: {exc.message}", file=sys.stderr)
        return moved, TrafficState({Track.STABLE: 100.0, Track.CANARY: 0.0})

    def rollback_canary(self) -> TrafficState:
        return self.rollback()[1]

    def switch(self, track: str) -> TrafficState:
        raise ToolkitError(
            "the replicas backend moves the canary by its pods; blue-green switches need "
            "--backend service-selector."
        )

    def switch_back(self) -> TrafficState:
        return self.switch(Track.STABLE)
