"""Build the traffic backend named on the command line or in the environment."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.traffic.base import TrafficBackend

if TYPE_CHECKING:
    from scripts.toolkit.traffic.kube.client import ClusterOptions
    from scripts.toolkit.traffic.kube.workloads import Names

BACKENDS = ("local", "gateway-api", "replicas", "service-selector", "rolling")
CLUSTER_BACKENDS = BACKENDS[1:]


def build_backend(
    name: str,
    *,
    platform_dir: Path,
    cluster: ClusterOptions | None = None,
    names: Names | None = None,
) -> TrafficBackend:
    """The backend `name`: the local platform in `platform_dir`, or a cluster's objects
    `names` reached as `cluster` says (DEPLOYING.md, "Kubernetes")."""
    if name == "local":
        from scripts.toolkit.traffic.local import LocalBackend  # noqa: PLC0415  # optional part

        if cluster is not None and cluster.dry_run:
            raise ToolkitError("--dry-run is for the cluster backends: drop it for local.")
        backend: TrafficBackend = LocalBackend(platform_dir)
        return backend
    if name in CLUSTER_BACKENDS:
        # The kubernetes client is imported only for a cluster backend.
        from scripts.toolkit.traffic.kube import (  # noqa: PLC0415
            gateway_api,
            replicas,
            rolling,
            service_selector,
        )
        from scripts.toolkit.traffic.kube.client import ClusterOptions, Kube, connect  # noqa: PLC0415
        from scripts.toolkit.traffic.kube.workloads import Names  # noqa: PLC0415

        kinds: dict[str, Callable[[Kube, Names], TrafficBackend]] = {
            "gateway-api": gateway_api.GatewayApiBackend,
            "replicas": replicas.ReplicasBackend,
            "service-selector": service_selector.ServiceSelectorBackend,
            "rolling": rolling.RollingBackend,
        }
        kube = connect(cluster or ClusterOptions())
        built: TrafficBackend = kinds[name](kube, names or Names())
        return built
    raise ToolkitError(f"unknown traffic backend {name!r}; choose one of: {', '.join(BACKENDS)}.")
