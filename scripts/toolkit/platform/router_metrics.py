"""The router's Prometheus series: answered requests, fallbacks, backend failures, weights."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector

from contract.metrics import APP_VERSION, ROUTER_FAILURES, TRACK, family
from scripts.toolkit.platform.routing import TRACKS, RoutingTable


class RouterMetrics:
    """The router's Prometheus series, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "router_requests",
            "Requests the router answered, by track and HTTP status code.",
            ["track", "code"],
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "router_fallbacks",
            "Requests re-sent to another backend because theirs refused the connection.",
            ["from_track", "to_track"],
            registry=self.registry,
        )
        # Each request a track's backend failed (refused, timed out, broke off), with the
        # version of that backend: the rollout policy counts them as the track's errors, even
        # when the request was then answered by the fallback.
        self.backend_errors = Counter(
            family(ROUTER_FAILURES),
            "Requests a track's backend failed, by track, its app version and reason.",
            [TRACK, APP_VERSION, "reason"],
            registry=self.registry,
        )
        ProcessCollector(registry=self.registry)  # process_start_time_seconds: restarts
        self.weight = Gauge(
            "router_weight_percent",
            "Share of units routed to each track, percent.",
            ["track"],
            registry=self.registry,
        )
        self.revision = Gauge(
            "router_routes_revision",
            "Revision of the serving routing table.",
            [],
            registry=self.registry,
        )
        self._children: dict[tuple[str, int], Any] = {}

    def count(self, track: str, code: int) -> None:
        """One answered request (label children cached: this runs for every request)."""
        child = self._children.get((track, code))
        if child is None:
            child = self._children[(track, code)] = self.requests.labels(track, str(code))
        child.inc()

    def export(self, table: RoutingTable) -> None:
        """Publish the weights and revision of `table`."""
        for track in TRACKS:
            self.weight.labels(track).set(table.weights.get(track, 0.0))
        self.revision.set(table.revision)
