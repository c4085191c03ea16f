"""The staging overlay's real objects (rendered by the pinned kustomize), seeded into a
KubeCluster for the cluster backends' tests, and git SHAs of this repository as image tags."""

from __future__ import annotations

import copy
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from contract.files import REPO_ROOT as REPO
from tests.k8s.tools import K8S, render, with_component
from tests.support.kube import KubeCluster

# The kinds a rollout reads or moves (the emulator serves more; these are enough).
SEEDED = {"Deployment", "Service", "HTTPRoute", "ConfigMap", "ServiceAccount"}
NAMESPACE = "ai-staging"


@cache
def _rendered(component: str) -> tuple[dict[str, Any], ...]:
    if component == "canary":
        folder = K8S / "overlays" / "staging"
        return tuple(render(folder))
    with tempfile.TemporaryDirectory(prefix="k8s-") as tmp:
        return tuple(render(with_component(Path(tmp), "staging", component)))


def overlay_objects(component: str = "canary", *, sha: str) -> list[dict[str, Any]]:
    """The staging overlay with `component`: the kinds a rollout touches, every image at `sha`."""
    objects = []
    for rendered in _rendered(component):
        if rendered["kind"] not in SEEDED:
            continue
        obj = copy.deepcopy(rendered)
        if obj["kind"] == "Deployment":
            pod = obj["spec"]["template"]["spec"]
            for container in [*pod.get("initContainers", []), *pod["containers"]]:
                if container["image"].startswith("ghcr.io/your-org/ai-service"):
                    container["image"] = f"ghcr.io/your-org/ai-service:{sha}"
        objects.append(obj)
    return objects


def seed(cluster: KubeCluster, component: str = "canary", *, sha: str) -> None:
    """Create the overlay's objects and wait until the controller made their pods ready."""
    cluster.create_all(overlay_objects(component, sha=sha))
    cluster.controller.settle()


@cache
def shas() -> tuple[str, str, str]:
    """Three commits of this repository, newest first: (HEAD, HEAD~1, HEAD~2)."""
    out = subprocess.run(
        ["git", "rev-list", "--max-count=3", "HEAD"],  # noqa: S607  # git from PATH
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.split()
    assert len(out) == 3, "the tests need a checkout with at least 3 commits"
    return out[0], out[1], out[2]
