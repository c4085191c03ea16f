"""The `rolling` backend: the stable Deployment updated in place, and undone.

`deploy` sets the image of the Deployment `ai-service` (every container that runs the app's
image), recording the image it replaces as `ai-rollout-template/previous-image`, and waits for
the rollout; a rollout that does not become ready is undone at once and the wait's reason (pod,
ImagePullBackOff, CrashLoopBackOff, failing probe) is the error. A rollback sets the recorded
image back, the rolling update's own `rollout undo`, without needing the new pods to work.
There is no canary weight: the judge compares nothing, so `monitor_canary` needs another
backend.
"""

from __future__ import annotations

from contract.tracks import Track
from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.traffic.base import TrafficState
from scripts.toolkit.traffic.kube.client import Kube
from scripts.toolkit.traffic.kube.common import KeepsState, first_move
from scripts.toolkit.traffic.kube.workloads import (
    APPS,
    DECISION,
    PREVIOUS_IMAGE,
    SHA,
    STARTED_AT,
    Names,
    app_image,
    now_text,
    read_deployment,
    rollout_notes,
    set_image,
    tag,
    wait_rolled_out,
)


class RollingBackend(KeepsState):
    """One track, `stable`, updated by the Deployment's rolling update."""

    name = "rolling"

    def __init__(self, kube: Kube, names: Names) -> None:
        self.kube = kube
        self.names = names
        self.deployment = names.deployment(Track.STABLE)

    def state_path(self) -> str:
        return self.kube.path(APPS, "deployments", self.deployment)

    def state(self) -> TrafficState:
        deployment = read_deployment(self.kube, self.deployment)
        return TrafficState({Track.STABLE: 100.0}, {Track.STABLE: tag(app_image(deployment))})

    def deploy(self, image: str, notes: dict[str, str | None]) -> TrafficState:
        """Roll `image` out; undo it when it does not become ready in the wait timeout."""
        deployment = read_deployment(self.kube, self.deployment)
        before = app_image(deployment)
        if before != image:
            extra = {PREVIOUS_IMAGE: before, SHA: tag(image), STARTED_AT: now_text(), **notes}
            set_image(self.kube, self.deployment, image, {**extra, DECISION: "rolling"})
        try:
            wait_rolled_out(self.kube, self.deployment)
        except ToolkitError as exc:
            if before != image:
                self.rollback()
                raise ToolkitError(
                    f"{exc.message.rstrip('.')}; undone: {self.deployment} runs {before} again.",
                    exit_code=exc.exit_code,
                ) from exc
            raise
        if not self.kube.dry_run:
            set_image(self.kube, self.deployment, image, {DECISION: "rolled out"})
        return self.state()

    def rollback(self) -> tuple[bool, TrafficState]:
        """The recorded previous image back, as the first write (bounded by the API timeout);
        nothing recorded: nothing to undo."""

        def move() -> tuple[bool, TrafficState]:
            deployment = read_deployment(self.kube, self.deployment)
            previous = rollout_notes(deployment).get(PREVIOUS_IMAGE)
            if previous is None:
                return False, TrafficState({Track.STABLE: 100.0})
            done = {PREVIOUS_IMAGE: None, DECISION: "rolled back", SHA: tag(previous)}
            set_image(self.kube, self.deployment, previous, done)
            return True, TrafficState({Track.STABLE: 100.0}, {Track.STABLE: tag(previous)})

        return first_move(self.kube, f"undoing the rollout of {self.deployment}", move)

    def set_canary_weight(self, percent: float, *, per_request: bool = False) -> TrafficState:
        raise ToolkitError(
            "the rolling backend has no canary: deploy with `python -m scripts.deploy "
            "--backend rolling`, or use --backend gateway-api/replicas for a canary."
        )

    def promote_canary(self) -> TrafficState:
        """Nothing to promote: a rolled-out update is the stable version; forget the undo."""
        deployment = read_deployment(self.kube, self.deployment)
        set_image(self.kube, self.deployment, app_image(deployment), {PREVIOUS_IMAGE: None})
        return self.state()

    def rollback_canary(self) -> TrafficState:
        return self.rollback()[1]

    def switch(self, track: str) -> TrafficState:
        raise ToolkitError("the rolling backend has one track; --switch needs service-selector.")

    def switch_back(self) -> TrafficState:
        return self.rollback()[1]
