"""What every cluster backend reads and writes: object names, images, readiness, rollout state.

Rollout state lives in annotations with the prefix `ai-rollout-template/` on the object the
backend moves (the HTTPRoute, the canary Deployment, the Service `ai-service`), so any runner
resumes a rollout from the cluster. A wait for pods names what is not ready: the pod, and its
reason (ImagePullBackOff, CrashLoopBackOff, a failing readiness probe).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contract.tracks import Track
from scripts.toolkit.cli import EXIT_FAILED, ToolkitError
from scripts.toolkit.traffic.kube.client import JSON_PATCH, MERGE_PATCH, Json, Kube, NotFound

PREFIX = "ai-rollout-template/"
# The rollout's state, one annotation each (values are strings).
SHA, STEP, STARTED_AT, DECISION = "sha", "step", "started-at", "decision"
PREVIOUS, PREVIOUS_IMAGE, REPLICAS, MONITOR = "previous", "previous-image", "replicas", "monitor"
APPS = "apps/v1"
TRACK_LABEL = "track"


def annotation(key: str) -> str:
    return PREFIX + key


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Names:
    """The objects of one service, as k8s/ names them: Deployment `<app>` (stable) and
    `<app>-<track>`, Services `<app>` (all tracks, or the blue-green switch) and
    `<app>-<track>`, the HTTPRoute `route` with its rule `rule`."""

    app: str = "ai-service"
    route: str = "ai-service"
    rule: str = "ai-service"

    def deployment(self, track: str) -> str:
        return self.app if track == Track.STABLE else f"{self.app}-{track}"

    def service(self, track: str) -> str:
        return f"{self.app}-{track}"


def find_deployment(kube: Kube, name: str) -> Json | None:
    """The Deployment `name`, or None when it does not exist."""
    try:
        return kube.get(kube.path(APPS, "deployments", name))
    except NotFound:
        return None


def read_deployment(kube: Kube, name: str) -> Json:
    """The Deployment `name`; missing, it is a configuration error saying what to do."""
    try:
        return kube.get(kube.path(APPS, "deployments", name))
    except NotFound:
        raise ToolkitError(
            f"Deployment {name} is not in namespace {kube.namespace}; apply the overlay there "
            "first, or fix --namespace/--app."
        ) from None


def rollout_notes(obj: Json | None) -> dict[str, str]:
    """The rollout-state annotations of `obj`, without the prefix."""
    found = ((obj or {}).get("metadata") or {}).get("annotations") or {}
    return {k[len(PREFIX) :]: str(v) for k, v in found.items() if k.startswith(PREFIX)}


def annotate(values: dict[str, str | None]) -> Json:
    """A merge patch setting (None: removing) rollout-state annotations."""
    return {"metadata": {"annotations": {annotation(k): v for k, v in values.items()}}}


def app_image(deployment: Json) -> str:
    """The image of the Deployment's main container (the first one)."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return str(containers[0]["image"])


def tag(image: str) -> str:
    """The tag of `image` (the git SHA it was built from), or the whole reference."""
    name = image.rsplit("/", 1)[-1]
    return name.split("@", 1)[0].split(":", 1)[1] if ":" in name else image


def replicas(deployment: Json | None) -> int:
    return int(((deployment or {}).get("spec") or {}).get("replicas", 1) or 0)


def image_patch(deployment: Json, image: str) -> list[Json]:
    """JSON Patch: every container and init container that runs the app's image runs `image`
    (each pinned by a `test` of its name, and the object by its resourceVersion)."""
    current = app_image(deployment)
    pod = deployment["spec"]["template"]["spec"]
    ops: list[Json] = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": _version(deployment)}
    ]
    for group in ("initContainers", "containers"):
        for i, container in enumerate(pod.get(group) or []):
            if container.get("image") == current:
                base = f"/spec/template/spec/{group}/{i}"
                ops.append({"op": "test", "path": f"{base}/name", "value": container["name"]})
                ops.append({"op": "replace", "path": f"{base}/image", "value": image})
    return ops


def _version(obj: Json) -> str:
    return str(obj["metadata"].get("resourceVersion", ""))


def scale(kube: Kube, name: str, count: int, extra: dict[str, str | None] | None = None) -> None:
    """Set Deployment `name`'s replicas (and rollout-state annotations) in one merge patch."""
    body: Json = {"spec": {"replicas": count}}
    if extra:
        body.update(annotate(extra))
    kube.patch(kube.path(APPS, "deployments", name), body, content_type=MERGE_PATCH)


def set_image(kube: Kube, name: str, image: str, extra: dict[str, str | None]) -> None:
    """Point Deployment `name` at `image` (a guarded JSON Patch, re-read on conflict), with
    rollout-state annotations."""
    from scripts.toolkit.traffic.kube.client import Conflict  # noqa: PLC0415  # one name here

    for _ in range(5):
        deployment = read_deployment(kube, name)
        ops = image_patch(deployment, image)
        if not deployment["metadata"].get("annotations"):
            ops.append({"op": "add", "path": "/metadata/annotations", "value": {}})
        for key, value in extra.items():
            path = "/metadata/annotations/" + annotation(key).replace("~", "~0").replace("/", "~1")
            if value is None:
                if key in rollout_notes(deployment):
                    ops.append({"op": "remove", "path": path})
            else:
                ops.append({"op": "add", "path": path, "value": value})
        try:
            kube.patch(
                kube.path(APPS, "deployments", name), ops, content_type=JSON_PATCH, guarded=True
            )
            return
        except Conflict:
            continue
    raise ToolkitError(f"Deployment {name} kept changing while its image was set; run again.")


def rolled_out(deployment: Json) -> bool:
    """The Deployment's controller saw its latest spec and every replica is updated and
    available (what `kubectl rollout status` waits for)."""
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    want = int(spec.get("replicas", 1) or 0)
    observed = int(status.get("observedGeneration", 0) or 0)
    generation = int(deployment["metadata"].get("generation", 0) or 0)
    return (
        observed >= generation
        and int(status.get("updatedReplicas", 0) or 0) >= want
        and int(status.get("availableReplicas", 0) or 0) >= want
        and int(status.get("replicas", 0) or 0) <= want
    )


def wait_rolled_out(kube: Kube, name: str, *, timeout: float | None = None) -> Json:
    """Wait until Deployment `name` is rolled out; after `timeout` (the wait timeout) stop with
    the pods that are not ready and why (gate failed: the caller moves no traffic to them)."""
    deadline = time.monotonic() + (kube.wait_timeout if timeout is None else timeout)
    while True:
        deployment = read_deployment(kube, name)
        if kube.dry_run or rolled_out(deployment):
            return deployment
        stuck = _progress_failed(deployment)
        if stuck or time.monotonic() >= deadline:
            why = not_ready(kube, deployment) + (f" ({stuck})" if stuck else "")
            raise ToolkitError(
                f"Deployment {name} is not ready after {kube.wait_timeout:g} s: {why}; traffic "
                "stays on the last good version: fix the image or the pods and deploy again.",
                exit_code=EXIT_FAILED,
            )
        kube.sleep(1.0)


def _progress_failed(deployment: Json) -> str | None:
    for condition in (deployment.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("status") == "False":
            return f"{condition.get('reason')}: {condition.get('message', '')}".rstrip(": ")
    return None


def not_ready(kube: Kube, deployment: Json) -> str:
    """Which of the Deployment's pods are not ready, and why, in one phrase."""
    selector = deployment["spec"]["selector"].get("matchLabels") or {}
    query = {"labelSelector": ",".join(f"{k}={v}" for k, v in sorted(selector.items()))}
    pods = kube.get(kube.path("v1", "pods"), query=query).get("items") or []
    reasons = [r for r in (pod_reason(p) for p in pods) if r]
    if not reasons:
        return "no pod of it is running yet" if not pods else "its pods are not available yet"
    shown = "; ".join(reasons[:3])
    return shown + (f" (and {len(reasons) - 3} more)" if len(reasons) > 3 else "")


def pod_reason(pod: Json) -> str | None:
    """`pod <name>: <reason>` when the pod is not ready, else None."""
    status = pod.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    if conditions.get("Ready", {}).get("status") == "True":
        return None
    name = pod["metadata"]["name"]
    containers = [*(status.get("initContainerStatuses") or [])]
    for container in [*containers, *(status.get("containerStatuses") or [])]:
        state = container.get("state") or {}
        if waiting := state.get("waiting"):
            message = f" ({waiting['message']})" if waiting.get("message") else ""
            return f"pod {name}: {waiting.get('reason', 'waiting')}{message}"
        if terminated := state.get("terminated"):
            return f"pod {name}: {container['name']} {terminated.get('reason', 'terminated')}"
        if state.get("running") and not container.get("ready"):
            return f"pod {name}: {container['name']} runs but its readiness probe fails"
    ready = conditions.get("Ready", {})
    detail = ready.get("message") or ready.get("reason") or status.get("phase") or "not ready"
    return f"pod {name}: {detail}"


def ready_endpoints(kube: Kube, service: str) -> int:
    """How many ready endpoints the EndpointSlices of Service `service` list (a nil `ready`
    counts as ready, as the EndpointSlice API says consumers should read it)."""
    query = {"labelSelector": f"kubernetes.io/service-name={service}"}
    slices = kube.get(kube.path("discovery.k8s.io/v1", "endpointslices"), query=query)
    count = 0
    for item in slices.get("items") or []:
        for endpoint in item.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is not False:
                count += 1
    return count


def wait_endpoints(kube: Kube, service: str, deployment: str) -> None:
    """Wait until Service `service` has a ready endpoint; else stop naming what is not ready."""
    if kube.dry_run:
        return
    deadline = time.monotonic() + kube.wait_timeout
    while ready_endpoints(kube, service) == 0:
        if time.monotonic() >= deadline:
            found = find_deployment(kube, deployment)
            why = not_ready(kube, found) if found else f"Deployment {deployment} is missing"
            raise ToolkitError(
                f"Service {service} has no ready endpoint after {kube.wait_timeout:g} s ({why}); "
                "traffic stays on the last good version: fix those pods and try again.",
                exit_code=EXIT_FAILED,
            )
        kube.sleep(1.0)


def versions_of(kube: Kube, names: Names, tracks: tuple[str, ...]) -> dict[str, str]:
    """The image tag each existing track's Deployment runs (a track with no replicas: none)."""
    found: dict[str, str] = {}
    for track in tracks:
        deployment = find_deployment(kube, names.deployment(track))
        if deployment is not None and (track == Track.STABLE or replicas(deployment) > 0):
            found[track] = tag(app_image(deployment))
    return found


def resource_version(obj: Json) -> str:
    return _version(obj)


def json_pointer(*parts: Any) -> str:
    """A JSON Pointer from path segments (RFC 6901 escaping)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)
