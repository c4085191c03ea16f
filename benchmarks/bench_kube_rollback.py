"""Cluster rollback benchmark on the API emulator: API calls and time until new requests go to
stable.

For each backend, on the stricter emulator (tests/support/kube) seeded with the staging
overlay and a canary moved to 50% (or switched to green, or rolled out): `rollback()` of the
backend, timed in-process, split at the moment its traffic move is confirmed (the end of
`first_move`: for gateway-api the route's weights written and re-read Accepted for the new
generation; replicas: the canary scaled to zero; service-selector: the selector patched and
re-read; rolling: the previous image set, pods then roll). Also with the API answering 503 for
1 s at the start, and the whole CLI (`python -m scripts.rollback`, a fresh process) wall time.

Usage: python benchmarks/bench_kube_rollback.py [--repetitions 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess  # nosec B404
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scripts.toolkit.traffic.kube import (  # noqa: E402
    common,
    gateway_api,
    replicas,
    rolling,
    service_selector,
)
from scripts.toolkit.traffic.kube.client import ClusterOptions, Kube, connect  # noqa: E402
from scripts.toolkit.traffic.kube.workloads import Names, scale, set_image  # noqa: E402
from tests.support.kube import KubeCluster  # noqa: E402
from tests.support.kube_objects import NAMESPACE, seed, shas  # noqa: E402

IMAGE = "ghcr.io/your-org/ai-service"


@dataclass
class Sample:
    """One rollback: calls and seconds until traffic is on stable, and for the whole call."""

    traffic_calls: int
    traffic_seconds: float
    total_calls: int
    total_seconds: float


def _instrument(marks: dict[str, float]) -> None:
    """Record the time and call count at which a backend's traffic move returns."""
    original = common.first_move

    def timed(kube: Kube, what: str, move: Callable[[], Any]) -> Any:
        result = original(kube, what, move)
        marks["at"], marks["calls"] = time.perf_counter(), kube.calls
        return result

    for module in (gateway_api, replicas, service_selector, rolling):
        module.first_move = timed  # type: ignore[attr-defined]  # measurement hook


def _prepare(cluster: KubeCluster, backend: str) -> Any:
    kube = connect(ClusterOptions(kubeconfig=cluster.kubeconfig, wait_timeout=10))
    names = Names()
    canary = f"{IMAGE}:{shas()[0]}"
    if backend == "gateway-api":
        set_image(kube, "ai-service-canary", canary, {})
        scale(kube, "ai-service-canary", 1)
        cluster.controller.settle()
        gateway_api.GatewayApiBackend(kube, names).set_canary_weight(50)
        return gateway_api.GatewayApiBackend
    if backend == "replicas":
        scale(kube, "ai-service", 4)
        set_image(kube, "ai-service-canary", canary, {})
        cluster.controller.settle()
        replicas.ReplicasBackend(kube, names).set_canary_weight(50)
        return replicas.ReplicasBackend
    if backend == "service-selector":
        set_image(kube, "ai-service-green", canary, {})
        scale(kube, "ai-service-green", 1)
        cluster.controller.settle()
        service_selector.ServiceSelectorBackend(kube, names).switch("green")
        return service_selector.ServiceSelectorBackend
    rolling.RollingBackend(kube, names).deploy(canary, {})
    return rolling.RollingBackend


def one(backend: str, *, outage: float = 0.0, cli: bool = False) -> Sample:
    """A fresh cluster, the rollout under way, one rollback measured."""
    component = "blue-green" if backend == "service-selector" else "canary"
    with KubeCluster(namespace=NAMESPACE) as cluster:
        seed(cluster, component, sha=shas()[1])
        kind = _prepare(cluster, backend)
        cluster.controller.settle()
        mark = cluster.mark()
        if cli:
            started = time.perf_counter()
            result = subprocess.run(  # nosec B603  # our own module
                [sys.executable, "-m", "scripts.rollback", "--backend", backend],
                cwd=REPO, env=cluster.env(), capture_output=True, text=True, timeout=120,
                check=False,
            )  # fmt: skip
            elapsed = time.perf_counter() - started
            assert result.returncode == 0, result.stderr
            calls = len(cluster.requests_since(mark))
            return Sample(calls, elapsed, calls, elapsed)
        kube = connect(ClusterOptions(kubeconfig=cluster.kubeconfig, wait_timeout=10))
        if outage:
            cluster.fail(status=503, seconds=outage)
        marks: dict[str, float] = {}
        _instrument(marks)
        started = time.perf_counter()
        moved, _ = kind(kube, Names()).rollback()
        ended = time.perf_counter()
        assert moved
        return Sample(int(marks["calls"]), marks["at"] - started, kube.calls, ended - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("gateway-api", "gateway-api", {}),
        ("gateway-api, API 503 for 1 s", "gateway-api", {"outage": 1.0}),
        ("replicas", "replicas", {}),
        ("service-selector", "service-selector", {}),
        ("rolling", "rolling", {}),
        ("gateway-api, whole CLI process", "gateway-api", {"cli": True}),
    ]
    rows = []
    for label, backend, options in cases:
        samples = [one(backend, **options) for _ in range(args.repetitions)]
        rows.append(
            {
                "case": label,
                "calls to stable": statistics.median(s.traffic_calls for s in samples),
                "ms to stable (median)": 1000
                * statistics.median(s.traffic_seconds for s in samples),
                "ms to stable (max)": 1000 * max(s.traffic_seconds for s in samples),
                "calls in all": statistics.median(s.total_calls for s in samples),
                "ms in all (median)": 1000 * statistics.median(s.total_seconds for s in samples),
            }
        )
    header = list(rows[0])
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        cells = [str(row["case"]), *(f"{row[k]:.0f}" for k in header[1:])]
        print("| " + " | ".join(cells) + " |")
    print(f"\n{args.repetitions} repetitions each, on the emulator, a fresh cluster for each.")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
