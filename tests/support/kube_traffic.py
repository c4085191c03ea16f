"""Traffic through a KubeCluster's split, answered by stand-ins of each track.

The emulator has no pods that answer, so this plays the gateway and the service: every tick it
sends requests, each to the canary with the share the cluster's objects give it right now (the
HTTPRoute rule's weights, or the ready replicas' share behind the Service), and the track that
answers counts the answer on its own `/metrics` as the service does (`app_answers_total` by
`track`, `app_version` = its Deployment's image tag, and `outcome`), failing with the error
rate the test gives that track. The monitor scrapes those pages like real instances'.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, generate_latest

from contract.metrics import ANSWERS, APP_VERSION, OUTCOME, TRACK, family
from tests.support.kube import KubeCluster

TICK = 0.1


@dataclass
class StandIn:
    """One track's instance: a counter of answers, served on 127.0.0.1."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    server: ThreadingHTTPServer | None = None

    def __post_init__(self) -> None:
        self.answers = Counter(
            family(ANSWERS), "answers", (TRACK, APP_VERSION, OUTCOME), registry=self.registry
        )
        registry = self.registry

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server's name
                body = generate_latest(registry)
                self.send_response(200 if self.path.startswith("/metrics") else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def _tag(deployment: dict[str, Any] | None) -> str:
    if deployment is None:
        return "none"
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    return str(image.rsplit(":", 1)[-1])


def canary_share(cluster: KubeCluster, split: str) -> float:
    """The canary's share of new requests as the cluster's objects route them now."""
    if split == "route":
        route = cluster.get("gateway.networking.k8s.io/v1", "HTTPRoute", "ai-service")
        rule = next(r for r in (route or {})["spec"]["rules"] if r.get("name") == "ai-service")
        weights = {ref["name"]: ref.get("weight", 1) for ref in rule["backendRefs"]}
        total = sum(weights.values())
        return weights.get("ai-service-canary", 0) / total if total else 0.0
    ready = {
        name: int(
            ((cluster.get("apps/v1", "Deployment", name) or {}).get("status") or {}).get(
                "readyReplicas", 0
            )
            or 0
        )
        for name in ("ai-service", "ai-service-canary")
    }
    total = sum(ready.values())
    return ready["ai-service-canary"] / total if total else 0.0


@contextmanager
def simulated_traffic(
    cluster: KubeCluster,
    *,
    split: str,
    canary_errors: float,
    stable_errors: float = 0.005,
    rate: float = 400.0,
    seed: int = 7,
) -> Iterator[tuple[StandIn, StandIn]]:
    """Stand-ins for stable and canary, and `rate` requests a second through the split."""
    stable, canary = StandIn(), StandIn()
    stop = threading.Event()
    chance = random.Random(seed)  # noqa: S311  # a simulation, not a secret

    def run() -> None:
        while not stop.wait(TICK):
            share = canary_share(cluster, split)
            versions = {
                "stable": _tag(cluster.get("apps/v1", "Deployment", "ai-service")),
                "canary": _tag(cluster.get("apps/v1", "Deployment", "ai-service-canary")),
            }
            for _ in range(int(rate * TICK)):
                track = "canary" if chance.random() < share else "stable"
                errors = canary_errors if track == "canary" else stable_errors
                outcome = "error" if chance.random() < errors else "answered"
                instance = canary if track == "canary" else stable
                instance.answers.labels(track, versions[track], outcome).inc()

    thread = threading.Thread(target=run, name="simulated-traffic", daemon=True)
    thread.start()
    try:
        yield stable, canary
    finally:
        stop.set()
        thread.join(5)
        stable.stop()
        canary.stop()
