"""The `gateway-api` backend: the weights of one named rule of an HTTPRoute.

It changes only the `weight` of the stable and canary backendRefs of the rule it owns (found
by name), with a JSON Patch whose `test` operations pin the route's resourceVersion, the rule's
name and the backends' names: a concurrent change fails the patch (409/422), and the backend
re-reads and tries again. It never replaces `spec` and never touches other rules, filters or
matches. The canary gets weight only once its Service has a ready endpoint. After every write
it re-reads the route until each parent reports the new generation Accepted and ResolvedRefs.

HTTPRoute weights are proportional integers (0..1,000,000): a percentage p is written as
p * 10,000 out of 1,000,000 and read back as weight / sum * 100. The split is per request;
where the rule has `sessionPersistence` (and the implementation supports it) per user, so
`assignment` tells the monitor which one the judge may assume.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time

from contract.tracks import Track
from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.traffic.base import TrafficState
from scripts.toolkit.traffic.kube.client import (
    JSON_PATCH,
    Conflict,
    Json,
    Kube,
    NotConfirmed,
    NotFound,
)
from scripts.toolkit.traffic.kube.common import KeepsState, first_move
from scripts.toolkit.traffic.kube.workloads import (
    DECISION,
    SHA,
    STARTED_AT,
    STEP,
    Names,
    annotation,
    app_image,
    find_deployment,
    json_pointer,
    read_deployment,
    replicas,
    resource_version,
    rollout_notes,
    scale,
    set_image,
    tag,
    versions_of,
    wait_endpoints,
    wait_rolled_out,
)

GROUP_VERSION = "gateway.networking.k8s.io/v1"
TOTAL = 1_000_000
CONDITIONS = ("Accepted", "ResolvedRefs")
ATTEMPTS = 10


def units(percent: float) -> int:
    """The canary's weight out of TOTAL for `percent` (exact to 1/10,000 of a percent)."""
    return round(percent * TOTAL / 100)


def percent(weight: int, total: int) -> float:
    """A weight out of `total` as a percentage (0 when nothing has weight)."""
    return round(weight * 100 / total, 4) if total else 0.0


class GatewayApiBackend(KeepsState):
    """Traffic between the stable and canary Services by the weights of one HTTPRoute rule."""

    name = "gateway-api"

    def __init__(self, kube: Kube, names: Names) -> None:
        self.kube = kube
        self.names = names

    # -- reading ---------------------------------------------------------------------------

    def state_path(self) -> str:
        return self.kube.path(GROUP_VERSION, "httproutes", self.names.route)

    def _read(self) -> Json:
        try:
            return self.kube.get(self.state_path())
        except NotFound:
            raise ToolkitError(
                f"HTTPRoute {self.names.route} is not in namespace {self.kube.namespace} (or the "
                "cluster has no Gateway API); apply an overlay with the canary component there, "
                "or fix --namespace/--route."
            ) from None

    def _locate(self, route: Json) -> tuple[int, dict[str, int]]:
        """The index of the owned rule, and of each track's backendRef in it."""
        rules = (route.get("spec") or {}).get("rules") or []
        found = [i for i, rule in enumerate(rules) if rule.get("name") == self.names.rule]
        if not found:
            named = ", ".join(str(r.get("name")) for r in rules if r.get("name")) or "none named"
            raise ToolkitError(
                f"HTTPRoute {self.names.route} has no rule named {self.names.rule!r} (rules: "
                f"{named}); name the rule the canary component weights, or pass --rule."
            )
        index = found[0]
        refs = rules[index].get("backendRefs") or []
        positions: dict[str, int] = {}
        for track in (Track.STABLE, Track.CANARY):
            service = self.names.service(track)
            at = [j for j, ref in enumerate(refs) if ref.get("name") == service]
            if not at:
                raise ToolkitError(
                    f"rule {self.names.rule!r} of HTTPRoute {self.names.route} has no backendRef "
                    f"to Service {service}; apply the canary component's weighted pair."
                )
            positions[track] = at[0]
        return index, positions

    def _weights(self, route: Json) -> dict[str, float]:
        index, positions = self._locate(route)
        refs = route["spec"]["rules"][index]["backendRefs"]
        raw = {t: int(refs[j].get("weight", 1)) for t, j in positions.items()}
        total = sum(int(ref.get("weight", 1)) for ref in refs)
        return {t: percent(w, total) for t, w in raw.items()}

    def assignment(self) -> str:
        """`user` when the owned rule keeps a client on one backend (sessionPersistence),
        else `request` (a weighted split assigns each request by chance)."""
        route = self._read()
        index, _ = self._locate(route)
        return "user" if route["spec"]["rules"][index].get("sessionPersistence") else "request"

    def state(self) -> TrafficState:
        route = self._read()
        weights = self._weights(route)
        versions = versions_of(self.kube, self.names, (Track.STABLE, Track.CANARY))
        if weights[Track.CANARY] > 0 and Track.CANARY not in versions:
            versions[Track.CANARY] = rollout_notes(route).get(SHA, "unknown")
        return TrafficState(weights, versions)

    # -- writing ---------------------------------------------------------------------------

    def _write(self, canary: int, notes: dict[str, str | None], route: Json | None = None) -> Json:
        """Set the rule's weights (canary `canary` of TOTAL) and the rollout's annotations with
        one guarded JSON Patch; re-read and retry when the route changed in between. Returns
        the route as confirmed by its parents' status."""
        path = self.state_path()
        for _ in range(ATTEMPTS):
            route = route or self._read()
            index, positions = self._locate(route)
            rule = json_pointer("spec", "rules", index)
            version = resource_version(route)
            ops: list[Json] = [
                {"op": "test", "path": "/metadata/resourceVersion", "value": version},
                {"op": "test", "path": f"{rule}/name", "value": self.names.rule},
            ]
            wanted: dict[str, int] = {Track.STABLE: TOTAL - canary, Track.CANARY: canary}
            for track, j in positions.items():
                ref = f"{rule}/backendRefs/{j}"
                service = self.names.service(track)
                ops.append({"op": "test", "path": f"{ref}/name", "value": service})
                ops.append({"op": "add", "path": f"{ref}/weight", "value": wanted[track]})
            if not route["metadata"].get("annotations"):
                ops.append({"op": "add", "path": "/metadata/annotations", "value": {}})
            present = rollout_notes(route)
            for key, value in notes.items():
                at = json_pointer("metadata", "annotations", annotation(key))
                if value is not None:
                    ops.append({"op": "add", "path": at, "value": value})
                elif key in present:
                    ops.append({"op": "remove", "path": at})
            try:
                written = self.kube.patch(path, ops, content_type=JSON_PATCH, guarded=True)
            except Conflict:
                route = None
                continue
            if self.kube.dry_run:
                return route
            return self._confirm(written, wanted)
        raise ToolkitError(
            f"HTTPRoute {self.names.route} changed {ATTEMPTS} times while its weights were "
            "written; find what else edits it, then run again."
        )

    def _confirm(self, written: Json, wanted: dict[str, int]) -> Json:
        """Re-read the route until every parent reports its generation Accepted and
        ResolvedRefs; stop at once when one reports either False for it."""
        generation = int(written["metadata"].get("generation", 0) or 0)
        deadline = time.monotonic() + self.kube.wait_timeout
        if self.kube.deadline is not None:  # a bounded operation (a rollback) waits no longer
            deadline = min(deadline, self.kube.deadline)
        pause = 0.02  # a gateway usually reports within tens of milliseconds: ask soon, then less
        while True:
            route = self._read()
            index, positions = self._locate(route)
            refs = route["spec"]["rules"][index]["backendRefs"]
            now = {t: int(refs[j].get("weight", 1)) for t, j in positions.items()}
            if now != wanted:
                raise ToolkitError(
                    f"HTTPRoute {self.names.route}'s weights changed under us ({now}); another "
                    "tool edits the rule: stop it, then run again."
                )
            verdict = self._accepted(route, max(generation, 1))
            if verdict is True:
                return route
            if isinstance(verdict, str) or time.monotonic() >= deadline:
                problem = verdict if isinstance(verdict, str) else self._pending(route)
                raise NotConfirmed(
                    f"HTTPRoute {self.names.route} is not accepted by its gateway: {problem}; "
                    "fix its parentRefs or backends (kubectl describe httproute "
                    f"{self.names.route})."
                )
            self.kube.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, 1.0)

    @staticmethod
    def _accepted(route: Json, generation: int) -> bool | str | None:
        """True: every parent reports `generation` Accepted and ResolvedRefs; a reason: one
        reports one of them False; None: not reported yet."""
        parents = (route.get("status") or {}).get("parents") or []
        if not parents:
            return None
        done = True
        for parent in parents:
            conditions = {c.get("type"): c for c in parent.get("conditions") or []}
            for kind in CONDITIONS:
                condition = conditions.get(kind)
                current = condition is not None and (
                    int(condition.get("observedGeneration", generation) or 0) >= generation
                )
                if condition is None or not current:
                    done = False
                    continue
                if condition.get("status") != "True":
                    ref = (parent.get("parentRef") or {}).get("name", "?")
                    return (
                        f"{kind}={condition.get('status')} from parent {ref} "
                        f"({condition.get('reason', '')}: {condition.get('message', '')})"
                    )
        return done or None

    def _pending(self, route: Json) -> str:
        parents = (route.get("status") or {}).get("parents") or []
        if not parents:
            return (
                "no gateway has reported on it (status.parents is empty): is a Gateway API "
                "implementation running, and does parentRefs name its Gateway?"
            )
        return (
            f"generation {route['metadata'].get('generation')} not yet reported Accepted and "
            f"ResolvedRefs after {self.kube.wait_timeout:g} s"
        )

    def set_canary_weight(self, percent: float, *, per_request: bool = False) -> TrafficState:
        """`percent` to the canary, once its Service has a ready endpoint (the assignment is
        the route's: per request, or per user with sessionPersistence)."""
        if not math.isfinite(percent) or not 0 <= percent <= 100:
            raise ToolkitError(f"the canary weight must be between 0 and 100, not {percent:g}.")
        notes: dict[str, str | None] = {STEP: f"{percent:g}", DECISION: "step"}
        if percent > 0:
            canary = self.names.deployment(Track.CANARY)
            wait_endpoints(self.kube, self.names.service(Track.CANARY), canary)
            notes[SHA] = self._canary_version()
            if not self.rollout_annotations().get(STARTED_AT):
                from scripts.toolkit.traffic.kube.workloads import now_text  # noqa: PLC0415

                notes[STARTED_AT] = now_text()
        before = self._read()
        try:
            self._write(units(percent), notes, route=before)
        except ToolkitError:
            # Not accepted, or changed under us: back to the weights that served (unconfirmed:
            # the error says what is wrong), so traffic stays on the last good version.
            weights = self._weights(before)
            with contextlib.suppress(ToolkitError):
                self.kube.wait_timeout, wait = 0.0, self.kube.wait_timeout
                try:
                    self._write(units(weights[Track.CANARY]), {DECISION: "step failed"})
                finally:
                    self.kube.wait_timeout = wait
            raise
        return self.state()

    def _canary_version(self) -> str:
        deployment = read_deployment(self.kube, self.names.deployment(Track.CANARY))
        return tag(app_image(deployment))

    def promote_canary(self) -> TrafficState:
        """All traffic to the canary, stable takes its image (rolled out and ready), all
        traffic back to stable, and the canary scaled to zero. Idempotent."""
        kube, names = self.kube, self.names
        stable_name, canary_name = names.deployment(Track.STABLE), names.deployment(Track.CANARY)
        canary = read_deployment(kube, canary_name)
        stable = read_deployment(kube, stable_name)
        image = app_image(canary)
        if app_image(stable) != image:
            if replicas(canary) == 0:
                return self.state()  # nothing to promote
            wait_endpoints(kube, names.service(Track.CANARY), canary_name)
            self._write(TOTAL, {STEP: "100", DECISION: "promoting"})
            set_image(kube, stable_name, image, {SHA: tag(image)})
        wait_rolled_out(kube, stable_name)  # a re-run after an interruption waits here too
        self._write(0, {STEP: None, DECISION: "promoted", STARTED_AT: None})
        if replicas(canary) > 0:
            scale(kube, canary_name, 0)
        return self.state()

    def rollback(self) -> tuple[bool, TrafficState]:
        """All traffic to stable as the first write (one read of the route, one guarded patch,
        re-reads until the gateway confirms), bounded by the API timeout; the canary is not
        read before. Then the canary is scaled to zero. Returns whether traffic moved, and the
        weights the gateway confirmed."""

        def move() -> tuple[bool, Json]:
            route = self._read()
            moved = self._weights(route)[Track.CANARY] > 0
            return moved, self._write(0, {STEP: "0", DECISION: "rolled back"}, route=route)

        moved, route = first_move(self.kube, "moving all traffic to stable", move)
        try:
            canary = self.names.deployment(Track.CANARY)
            if replicas(find_deployment(self.kube, canary)) > 0:
                scale(self.kube, canary, 0)
                moved = True
        except ToolkitError as exc:  # traffic is on stable: the canary's pods only cost
            print(f"warning: the canary was not scaled down: {exc.message}", file=sys.stderr)
        return moved, TrafficState(self._weights(route))

    def rollback_canary(self) -> TrafficState:
        return self.rollback()[1]

    def switch(self, track: str) -> TrafficState:
        raise ToolkitError(
            "the gateway-api backend moves the canary by weight; blue-green switches need "
            "--backend service-selector."
        )

    def switch_back(self) -> TrafficState:
        return self.switch(Track.STABLE)
