"""The `local` traffic backend: the local platform's router (`python -m scripts.local_platform`).

Weights and switches are single compare-and-swap changes of the router's table; a promotion
replaces stable's instance without downtime (see `platform/operations.py`). Each operation is
idempotent.
"""

from __future__ import annotations

import math
from pathlib import Path

from contract.tracks import Track
from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.platform import operations, tracks
from scripts.toolkit.platform.routing import RoutingTable
from scripts.toolkit.platform.state import ProcessRecord, StateStore, now
from scripts.toolkit.traffic.base import TrafficState

DEPLOY = tracks.DEPLOY


class LocalBackend:
    """Traffic between the tracks of the local platform whose folder is `platform_dir`."""

    name = "local"

    def __init__(self, platform_dir: Path, *, timeout: float = 60.0) -> None:
        self.platform_dir = platform_dir
        self.store = StateStore(platform_dir)
        self.timeout = timeout  # for a replacement instance to become ready

    def state(self) -> TrafficState:
        return tracks.traffic(self.platform_dir)

    def set_canary_weight(self, percent: float, *, per_request: bool = False) -> TrafficState:
        """Send `percent` of units to the canary and the rest to stable (one atomic change);
        with `per_request`, each request is assigned by chance instead of sticky by user."""
        if not math.isfinite(percent) or not 0 <= percent <= 100:
            raise ToolkitError(f"the canary weight must be between 0 and 100, not {percent:g}.")

        def change(table: RoutingTable) -> RoutingTable:
            if Track.STABLE not in table.backends:
                raise ToolkitError(
                    f"no stable instance is deployed; deploy one with `{DEPLOY} stable`."
                )
            if Track.CANARY not in table.backends and percent > 0:
                raise ToolkitError(
                    f"no canary is deployed; deploy one with `{DEPLOY} canary` first."
                )
            weights = dict.fromkeys(table.backends, 0.0)
            weights[Track.STABLE] = 100.0 - percent
            if Track.CANARY in table.backends:
                weights[Track.CANARY] = float(percent)
            return table.changed(weights=weights, per_request=per_request and 0 < percent < 100)

        operations.require_up(self.store)[1].update(change)
        return self.state()

    def promote_canary(self) -> TrafficState:
        """Stable takes the canary's code (same ref, without the canary's extra settings) by
        zero-downtime replacement; then the canary leaves the router and stops.

        The intent is recorded first, so a re-run after an interruption finishes the same
        promotion even when the canary has died meanwhile."""
        store = self.store
        with store.operation():
            state, client = operations.require_up(store)
            operations.reconcile(store, client)
            intent = state.intent if state.intent and state.intent.get("op") == "promote" else None
            canary = state.apps().get(Track.CANARY)
            if intent is None:
                if canary is None:
                    return self.state()  # nothing to promote (or promoted already)
                spec = {**canary.spec(), "track": Track.STABLE, "extra_env": {}}
                intent = {"op": "promote", "spec": spec, "started_at": now()}
                with store.edit() as editing:
                    editing.intent = intent
            target = ProcessRecord(Track.STABLE, "app", **intent["spec"])
            stable = store.read().apps().get(Track.STABLE)
            if stable is None or stable.spec() != target.spec() or not stable.running():
                operations.replace_track(store, client, target, timeout=self.timeout)
            client.update(lambda table: operations.without_track(table, Track.CANARY))
            with store.edit() as editing:
                editing.intent = None
            operations.reconcile(store, client)
        return self.state()

    def rollback_canary(self) -> TrafficState:
        """All of the canary's traffic back to stable in one change, then stop the canary.
        Works with a dead canary; running it again changes nothing."""
        return tracks.undeploy(self.platform_dir, track=Track.CANARY)

    def switch(self, track: str) -> TrafficState:
        """Blue-green: all traffic to `track` in one atomic change; the track that served
        before keeps running as the instant way back, recorded as `previous`."""
        if track not in tracks.SWITCHABLE:
            raise ToolkitError(f"--switch takes {', '.join(tracks.SWITCHABLE)}, not {track!r}.")
        before = self.state()
        self._route_all(track)
        if before.active not in (None, track):
            with self.store.edit() as state:
                state.switched_from = before.active
        return self.state()

    def switch_back(self) -> TrafficState:
        """Undo the last blue-green switch: all traffic back to the track that served before,
        which is then forgotten (so running it again changes nothing)."""
        previous = self.state().previous
        if previous is not None:
            self._route_all(previous)
            with self.store.edit() as state:
                state.switched_from = None
        return self.state()

    def _route_all(self, track: str) -> None:
        def change(table: RoutingTable) -> RoutingTable:
            if track not in table.backends:
                raise ToolkitError(
                    f"no {track} instance is deployed; deploy one with `{DEPLOY} {track}`."
                )
            weights = dict.fromkeys(table.backends, 0.0)
            weights[track] = 100.0
            return table.changed(weights=weights)

        operations.require_up(self.store)[1].update(change)
