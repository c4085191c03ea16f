"""A KubeCluster with the staging overlay's objects, and the backends connected to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scripts.toolkit.traffic.kube.client import ClusterOptions, Kube, connect
from scripts.toolkit.traffic.kube.workloads import scale, set_image
from tests.support.kube import KubeCluster
from tests.support.kube_objects import NAMESPACE, seed, shas

IMAGE = "ghcr.io/your-org/ai-service"


@pytest.fixture
def cluster() -> Iterator[KubeCluster]:
    """The canary overlay, stable at HEAD~1, its pods ready."""
    with KubeCluster(namespace=NAMESPACE) as running:
        seed(running, sha=shas()[1])
        yield running


@pytest.fixture
def kube(cluster: KubeCluster) -> Kube:
    """The client as the CLIs build it, with short time limits."""
    return connect(ClusterOptions(kubeconfig=cluster.kubeconfig, api_timeout=5, wait_timeout=3))


def deploy_canary(kube: Kube, cluster: KubeCluster, *, replicas: int = 1) -> str:
    """The canary Deployment at HEAD with `replicas` pods (what scripts.deploy does)."""
    sha = shas()[0]
    set_image(kube, "ai-service-canary", f"{IMAGE}:{sha}", {})
    scale(kube, "ai-service-canary", replicas)
    cluster.controller.settle()
    return sha
