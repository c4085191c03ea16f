"""The live Deployment of a cluster backend (the one serving all traffic) and a build's image.

deploy and migrate both start from it: the live image's repository with a build's SHA as its
tag is the image a deploy ships and its migration Job runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from contract.tracks import Track
from scripts.toolkit.traffic.kube import workloads
from scripts.toolkit.traffic.kube.client import Json
from scripts.toolkit.traffic.kube.common import KeepsState
from scripts.toolkit.traffic.kube.service_selector import ServiceSelectorBackend


@dataclass(frozen=True)
class Live:
    """The Deployment serving all traffic: its name, its object and its app image."""

    name: str
    deployment: Json
    image: str

    @property
    def sha(self) -> str:
        """The commit the live image is tagged with."""
        return workloads.tag(self.image)

    def build_image(self, sha: str, repository: str | None = None) -> str:
        """`<repository>:<sha>`; the repository defaults to the live image's."""
        return f"{repository or self.image.rsplit(':', 1)[0].split('@', 1)[0]}:{sha}"


def live_track(backend: KeepsState) -> str:
    """The track serving all traffic: the service-selector backend's serving color (blue
    before its first switch), stable on the other backends."""
    if isinstance(backend, ServiceSelectorBackend):
        return backend.state().active or Track.BLUE.value
    return Track.STABLE.value


def read_live(backend: KeepsState, track: str | None = None) -> Live:
    """The live Deployment of `backend`; `track` names it when the caller already knows it."""
    name = backend.names.deployment(track or live_track(backend))
    deployment = workloads.read_deployment(backend.kube, name)
    return Live(name, deployment, workloads.app_image(deployment))
