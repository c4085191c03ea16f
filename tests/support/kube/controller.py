"""A minimal controller beside the emulator: it fills status as a real cluster's controllers do.

Deployments get ReplicaSets (one per pod template, `deployment.kubernetes.io/revision`
annotations, so `kubectl rollout undo` finds the history), Pods, and a status with
observedGeneration, replica counts and the Available/Progressing conditions
(ProgressDeadlineExceeded when pods never become ready); Services get EndpointSlices (and
Endpoints) of their ready pods; HTTPRoutes get `status.parents[].conditions` Accepted and
ResolvedRefs. All writes go through the store, status through the `status` subresource, and
ownerReferences are garbage-collected.
"""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

from tests.support.kube.errors import ApiError
from tests.support.kube.kinds import GATEWAY, Kind, by_kind
from tests.support.kube.store import MERGE_PATCH, Store, now, template_hash

DEPLOYMENT = by_kind("apps/v1", "Deployment")
REPLICASET = by_kind("apps/v1", "ReplicaSet")
POD = by_kind("v1", "Pod")
SERVICE = by_kind("v1", "Service")
ENDPOINTS = by_kind("v1", "Endpoints")
SLICE = by_kind("discovery.k8s.io/v1", "EndpointSlice")
ROUTE = by_kind(f"{GATEWAY}/v1", "HTTPRoute")
JOB = by_kind("batch/v1", "Job")
REVISION = "deployment.kubernetes.io/revision"
MANAGER = "emulator-controller"
CONTROLLER_NAME = "emulator.example/gateway-controller"

WAITING_MESSAGES = {
    "CrashLoopBackOff": "back-off 10s restarting failed container",
    "ImagePullBackOff": "Back-off pulling image: image not found",
    "ErrImagePull": "rpc error: code = NotFound desc = failed to pull and unpack image",
    "CreateContainerConfigError": 'configmap "missing" not found',
}


def _owner_ref(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _owned_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    return any(
        ref.get("uid") == owner["metadata"]["uid"]
        for ref in obj["metadata"].get("ownerReferences") or []
    )


def _condition(
    type_: str, status: bool, reason: str, message: str, old: list[dict[str, Any]]
) -> dict[str, Any]:
    text = "True" if status else "False"
    previous = next((c for c in old if c.get("type") == type_), None)
    changed = previous is None or previous.get("status") != text
    stamp = now() if changed else previous.get("lastTransitionTime", now())  # type: ignore[union-attr]
    return {
        "type": type_,
        "status": text,
        "reason": reason,
        "message": message,
        "lastTransitionTime": stamp,
    }


class Controller:
    """Reconciles everything on every change of the store (and every 50 ms for deadlines)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._never_ready: dict[str, tuple[str, str | None]] = {}
        self._not_accepted: set[str] = set()
        self._pods_gone: set[str] = set()
        self._failing_jobs: set[str] = set()
        self._due = False  # a pass is due without a change: a readiness delay or deadline runs
        self._progress_started: dict[str, float] = {}
        self.ready_delay = 0.0  # seconds from a pod's creation to its readiness
        self._born: dict[str, float] = {}
        self.progress_deadline: float | None = (
            None  # seconds; None reads spec.progressDeadlineSeconds
        )
        self._wakeup = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[BaseException] = []
        self._idle = threading.Event()

    # -- switches ----------------------------------------------------------------------------

    def never_ready(
        self, deployment: str, reason: str = "CrashLoopBackOff", image: str | None = None
    ) -> None:
        """That Deployment's pods run but never pass readiness; `reason` is their waiting reason.

        With `image`, only pods with a container running that image (a bad rolling update's new
        pods, while the old ones keep serving).
        """
        if reason not in WAITING_MESSAGES:
            raise ValueError(f"reason must be one of {sorted(WAITING_MESSAGES)}, not {reason!r}")
        self._never_ready[deployment] = (reason, image)
        self.poke()

    def fail_job(self, job: str) -> None:
        """That Job fails (BackoffLimitExceeded) instead of completing."""
        self._failing_jobs.add(job)
        self.poke()

    def ready(self, deployment: str) -> None:
        """Undo `never_ready`: the pods become ready again."""
        self._never_ready.pop(deployment, None)
        self.poke()

    def not_accepted(self, route: str) -> None:
        """The HTTPRoute's parents report Accepted=False (NotAllowedByListeners)."""
        self._not_accepted.add(route)
        self.poke()

    def accepted(self, route: str) -> None:
        self._not_accepted.discard(route)
        self.poke()

    def delete_pods(self, deployment: str) -> None:
        """The Deployment's pods are gone and stay gone (as on a node loss) until `restore_pods`."""
        self._pods_gone.add(deployment)
        self.poke()

    def restore_pods(self, deployment: str) -> None:
        self._pods_gone.discard(deployment)
        self.poke()

    # -- running -----------------------------------------------------------------------------

    def poke(self) -> None:
        self._idle.clear()
        self._wakeup.set()

    def start(self) -> None:
        self.store.listeners.append(self.poke)
        self._thread = threading.Thread(target=self._run, name="kube-controller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.poke in self.store.listeners:
            self.store.listeners.remove(self.poke)

    def settle(self, timeout: float = 5.0) -> None:
        """Wait until the controller has reacted to every change so far."""
        if not self._idle.wait(timeout):
            raise AssertionError(f"the emulator's controller did not settle within {timeout} s")

    def _run(self) -> None:
        last = -1  # the store's resourceVersion after the last pass
        while not self._stop.is_set():
            woken = self._wakeup.wait(timeout=0.05)
            self._wakeup.clear()
            if self._stop.is_set():
                return
            rv = self.store.resource_version
            if not woken and rv == last and not self._due:
                self._idle.set()  # nothing changed and no deadline or delay is running
                continue
            self._due = False
            try:
                self.reconcile()
            except ApiError as exc:
                # A 409 is a race with a client's write: the next pass (50 ms) looks again.
                if exc.code != 409 and len(self.errors) < 100:
                    self.errors.append(exc)
                continue
            except Exception as exc:  # keep serving; the test sees the error in `errors`
                if len(self.errors) < 100:
                    self.errors.append(exc)
            last = self.store.resource_version
            if last == rv and not self._wakeup.is_set():
                self._idle.set()

    def reconcile(self) -> None:
        namespaces = {
            o["metadata"]["name"] for o in self.store.select(by_kind("v1", "Namespace"), None)[0]
        }
        for ns in sorted(namespaces):
            self._collect_garbage(ns)
            for deployment in self.store.select(DEPLOYMENT, ns)[0]:
                self._deployment(deployment)
            for service in self.store.select(SERVICE, ns)[0]:
                self._service(service)
            for route in self.store.select(ROUTE, ns)[0]:
                self._route(route)
            for job in self.store.select(JOB, ns)[0]:
                self._job(job)

    # -- garbage collection ------------------------------------------------------------------

    def _collect_garbage(self, ns: str) -> None:
        uids: set[str] = set()
        kinds: tuple[Kind, ...] = (DEPLOYMENT, REPLICASET, POD, SERVICE, SLICE)
        listed = {kind: self.store.select(kind, ns)[0] for kind in kinds}
        for objs in listed.values():
            uids.update(o["metadata"]["uid"] for o in objs)
        for kind in (REPLICASET, POD, SLICE):
            for obj in listed[kind]:
                refs = obj["metadata"].get("ownerReferences") or []
                if refs and not any(r.get("uid") in uids for r in refs):
                    self._delete(kind, ns, obj["metadata"]["name"])

    def _delete(self, kind: Kind, ns: str, name: str) -> None:
        try:
            self.store.delete(kind, ns, name)
        except ApiError as exc:
            if exc.code != 404:
                raise

    # -- deployments -------------------------------------------------------------------------

    def _deployment(self, deployment: dict[str, Any]) -> None:
        meta, spec = deployment["metadata"], deployment.get("spec", {})
        ns, name = meta["namespace"], meta["name"]
        template = spec.get("template", {})
        wanted = int(spec.get("replicas", 1))
        pod_hash = template_hash(template)
        sets = [rs for rs in self.store.select(REPLICASET, ns)[0] if _owned_by(rs, deployment)]
        revisions = [int(rs["metadata"].get("annotations", {}).get(REVISION, "0")) for rs in sets]
        current = next(
            (rs for rs in sets if rs["metadata"]["labels"].get("pod-template-hash") == pod_hash),
            None,
        )
        top = max(revisions, default=0)
        if current is None:
            labels = {
                **(template.get("metadata", {}).get("labels") or {}),
                "pod-template-hash": pod_hash,
            }
            current = self.store.create(
                REPLICASET,
                ns,
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "metadata": {
                        "name": f"{name}-{pod_hash}",
                        "labels": labels,
                        "annotations": {REVISION: str(top + 1)},
                        "ownerReferences": [_owner_ref(deployment)],
                    },
                    "spec": {
                        "replicas": 0,
                        "selector": {"matchLabels": labels},
                        "template": {
                            **copy.deepcopy(template),
                            "metadata": {
                                **copy.deepcopy(template.get("metadata", {})),
                                "labels": labels,
                            },
                        },
                    },
                },
                manager=MANAGER,
            )
            self._progress_started[name] = time.monotonic()
            sets.append(current)
        elif (
            int(current["metadata"].get("annotations", {}).get(REVISION, "0")) < top
        ):  # rolled back to it
            current = self.store.patch(
                REPLICASET,
                ns,
                current["metadata"]["name"],
                MERGE_PATCH,
                {"metadata": {"annotations": {REVISION: str(top + 1)}}},
                manager=MANAGER,
            )
            self._progress_started[name] = time.monotonic()
            sets = [
                current if rs["metadata"]["uid"] == current["metadata"]["uid"] else rs
                for rs in sets
            ]
        revision = current["metadata"]["annotations"][REVISION]
        if (meta.get("annotations") or {}).get(REVISION) != revision:
            deployment = self.store.patch(
                DEPLOYMENT,
                ns,
                name,
                MERGE_PATCH,
                {"metadata": {"annotations": {REVISION: revision}}},
                manager=MANAGER,
            )
        self._progress_started.setdefault(name, time.monotonic())

        pods_by_set = {rs["metadata"]["uid"]: self._pods_of(rs) for rs in sets}
        new_ready = sum(1 for p in pods_by_set[current["metadata"]["uid"]] if _pod_ready(p))
        gone = name in self._pods_gone
        for rs in sets:  # maxUnavailable 0: old pods stay until new ones are ready
            is_current = rs["metadata"]["uid"] == current["metadata"]["uid"]
            replicas = (
                wanted
                if is_current
                else max(0, min(rs["spec"].get("replicas", 0), wanted - new_ready))
            )
            if rs["spec"].get("replicas") != replicas:
                rs = self.store.patch(  # noqa: PLW2901  # the set as written
                    REPLICASET,
                    ns,
                    rs["metadata"]["name"],
                    MERGE_PATCH,
                    {"spec": {"replicas": replicas}},
                    manager=MANAGER,
                )
            pods_by_set[rs["metadata"]["uid"]] = self._scale_pods(
                rs, 0 if gone else replicas, pods_by_set[rs["metadata"]["uid"]], name
            )
            self._set_status(
                REPLICASET, rs, self._rs_status(rs, pods_by_set[rs["metadata"]["uid"]])
            )
        self._trim_history(deployment, sets, current)
        self._set_status(
            DEPLOYMENT, deployment, self._deployment_status(deployment, current, pods_by_set)
        )

    def _trim_history(
        self, deployment: dict[str, Any], sets: list[dict[str, Any]], current: dict[str, Any]
    ) -> None:
        limit = int(deployment.get("spec", {}).get("revisionHistoryLimit", 10))
        old = [
            rs
            for rs in sets
            if rs["metadata"]["uid"] != current["metadata"]["uid"]
            and not rs["spec"].get("replicas")
        ]
        old.sort(key=lambda rs: int(rs["metadata"].get("annotations", {}).get(REVISION, "0")))
        for rs in old[: max(0, len(old) - limit)]:
            self._delete(REPLICASET, rs["metadata"]["namespace"], rs["metadata"]["name"])

    def _pods_of(self, rs: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            p for p in self.store.select(POD, rs["metadata"]["namespace"])[0] if _owned_by(p, rs)
        ]

    def _scale_pods(
        self, rs: dict[str, Any], replicas: int, pods: list[dict[str, Any]], deployment: str
    ) -> list[dict[str, Any]]:
        ns, rs_name = rs["metadata"]["namespace"], rs["metadata"]["name"]
        pods = sorted(pods, key=lambda p: p["metadata"]["name"])
        for extra in pods[replicas:]:
            self._delete(POD, ns, extra["metadata"]["name"])
        pods = pods[:replicas]
        taken = {p["metadata"]["name"] for p in pods}
        index = 0
        while len(pods) < replicas:
            name = f"{rs_name}-{index:05d}"
            index += 1
            if name in taken:
                continue
            template = rs["spec"].get("template", {})
            pods.append(
                self.store.create(
                    POD,
                    ns,
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "metadata": {
                            "name": name,
                            "labels": copy.deepcopy(
                                template.get("metadata", {}).get("labels") or {}
                            ),
                            "ownerReferences": [_owner_ref(rs)],
                        },
                        "spec": copy.deepcopy(template.get("spec", {})),
                    },
                    manager=MANAGER,
                )
            )
        return [
            self._set_status(POD, p, self._pod_status(p, self._failing(deployment, p)))
            for p in pods
        ]

    def _failing(self, deployment: str, pod: dict[str, Any]) -> str | None:
        """The waiting reason of a pod `never_ready` covers, None for a pod that becomes ready."""
        reason, image = self._never_ready.get(deployment, (None, None))
        images = {c.get("image") for c in pod.get("spec", {}).get("containers") or []}
        return reason if reason is not None and (image is None or image in images) else None

    def _pod_status(self, pod: dict[str, Any], reason: str | None) -> dict[str, Any]:
        old = pod.get("status") or {}
        born = self._born.setdefault(pod["metadata"]["uid"], time.monotonic())
        ready = reason is None and time.monotonic() - born >= self.ready_delay
        if reason is None and not ready:
            self._due = True  # becomes ready when the delay has passed
        containers = []
        for c in pod.get("spec", {}).get("containers") or []:
            state: dict[str, Any]
            if reason is None:
                state = {"running": {"startedAt": pod["metadata"]["creationTimestamp"]}}
            else:
                state = {"waiting": {"reason": reason, "message": WAITING_MESSAGES[reason or ""]}}
            containers.append(
                {
                    "name": c.get("name"),
                    "image": c.get("image") or "",
                    "imageID": "" if reason else "sha256:" + template_hash(c.get("image"))[:10],
                    "ready": ready,
                    "started": reason is None,
                    "restartCount": 0 if ready or reason != "CrashLoopBackOff" else 3,
                    "state": state,
                }
            )
        pulling = reason in ("ImagePullBackOff", "ErrImagePull")
        old_conditions = old.get("conditions") or []
        return {
            "phase": "Pending" if pulling else "Running",
            "podIP": old.get("podIP") or self.store.pod_ip(),
            "startTime": pod["metadata"]["creationTimestamp"],
            "conditions": [
                _condition("PodScheduled", True, "", "", old_conditions),
                _condition(
                    "ContainersReady",
                    ready,
                    "" if ready else "ContainersNotReady",
                    ""
                    if ready
                    else f"containers with unready status: {[c.get('name') for c in containers]}",
                    old_conditions,
                ),
                _condition(
                    "Ready", ready, "" if ready else "ContainersNotReady", "", old_conditions
                ),
            ],
            "containerStatuses": containers,
        }

    def _rs_status(self, rs: dict[str, Any], pods: list[dict[str, Any]]) -> dict[str, Any]:
        ready = sum(1 for p in pods if _pod_ready(p))
        return {
            "replicas": len(pods),
            "fullyLabeledReplicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }

    def _deployment_status(
        self,
        deployment: dict[str, Any],
        current: dict[str, Any],
        pods_by_set: dict[str, list[dict[str, Any]]],
    ) -> dict[str, Any]:
        spec, name = deployment.get("spec", {}), deployment["metadata"]["name"]
        wanted = int(spec.get("replicas", 1))
        pods = [p for group in pods_by_set.values() for p in group]
        new_pods = pods_by_set[current["metadata"]["uid"]]
        ready = sum(1 for p in pods if _pod_ready(p))
        new_ready = sum(1 for p in new_pods if _pod_ready(p))
        old = (deployment.get("status") or {}).get("conditions") or []
        complete = new_ready >= wanted and len(pods) == len(new_pods)
        deadline = self.progress_deadline
        if deadline is None:
            deadline = float(spec.get("progressDeadlineSeconds", 600))
        rs_name = current["metadata"]["name"]
        if complete:
            progressing = _condition(
                "Progressing",
                True,
                "NewReplicaSetAvailable",
                f'ReplicaSet "{rs_name}" has successfully progressed.',
                old,
            )
            self._progress_started.pop(name, None)
        elif time.monotonic() - self._progress_started.get(name, time.monotonic()) > deadline:
            progressing = _condition(
                "Progressing",
                False,
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{rs_name}" has timed out progressing.',
                old,
            )
        else:
            self._due = True  # the progress deadline may pass
            progressing = _condition(
                "Progressing",
                True,
                "ReplicaSetUpdated",
                f'ReplicaSet "{rs_name}" is progressing.',
                old,
            )
        available = _condition(
            "Available",
            ready >= wanted,
            "MinimumReplicasAvailable" if ready >= wanted else "MinimumReplicasUnavailable",
            "Deployment has minimum availability."
            if ready >= wanted
            else "Deployment does not have minimum availability.",
            old,
        )
        return {
            "observedGeneration": deployment["metadata"].get("generation", 1),
            "replicas": len(pods),
            "updatedReplicas": len(new_pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "unavailableReplicas": max(0, wanted - ready),
            "conditions": [available, progressing],
        }

    def _set_status(
        self, kind: Kind, obj: dict[str, Any], status: dict[str, Any]
    ) -> dict[str, Any]:
        if _clean(obj.get("status")) == _clean(status):
            return obj
        meta = obj["metadata"]
        return self.store.replace(
            kind,
            meta.get("namespace", ""),
            meta["name"],
            {**obj, "status": status},
            subresource="status",
            manager=MANAGER,
        )

    # -- services ----------------------------------------------------------------------------

    def _service(self, service: dict[str, Any]) -> None:
        meta, spec = service["metadata"], service.get("spec", {})
        ns, name = meta["namespace"], meta["name"]
        selector = spec.get("selector")
        if not selector:
            return
        pods = [
            p
            for p in self.store.select(POD, ns)[0]
            if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
        ]
        endpoints = [
            {
                "addresses": [p["status"]["podIP"]],
                "conditions": {
                    "ready": _pod_ready(p),
                    "serving": _pod_ready(p),
                    "terminating": False,
                },
                "targetRef": {
                    "kind": "Pod",
                    "namespace": ns,
                    "name": p["metadata"]["name"],
                    "uid": p["metadata"]["uid"],
                },
            }
            for p in pods
            if (p.get("status") or {}).get("podIP")
        ]
        ports = [
            {
                "name": p.get("name", ""),
                "port": p.get("targetPort", p.get("port")),
                "protocol": p.get("protocol", "TCP"),
            }
            for p in spec.get("ports") or []
        ]
        slice_name = f"{name}-emu"
        wanted = {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": slice_name,
                "labels": {
                    "kubernetes.io/service-name": name,
                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                },
                "ownerReferences": [_owner_ref(service)],
            },
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": ports,
        }
        self._ensure(SLICE, ns, slice_name, wanted)
        endpoints_typed: list[dict[str, Any]] = endpoints
        ready = [e for e in endpoints_typed if e["conditions"]["ready"]]
        not_ready = [e for e in endpoints_typed if not e["conditions"]["ready"]]
        subset: dict[str, Any] = {"ports": ports}
        if ready:
            subset["addresses"] = [
                {"ip": e["addresses"][0], "targetRef": e["targetRef"]} for e in ready
            ]
        if not_ready:
            subset["notReadyAddresses"] = [
                {"ip": e["addresses"][0], "targetRef": e["targetRef"]} for e in not_ready
            ]
        self._ensure(
            ENDPOINTS,
            ns,
            name,
            {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": name, "labels": dict(meta.get("labels") or {})},
                "subsets": [subset] if endpoints else [],
            },
        )

    def _ensure(self, kind: Kind, ns: str, name: str, wanted: dict[str, Any]) -> None:
        existing = self.store.get(kind, ns, name)
        if existing is None:
            self.store.create(kind, ns, wanted, manager=MANAGER)
            return
        body = {k: v for k, v in wanted.items() if k != "metadata"}
        if any(existing.get(k) != v for k, v in body.items()):
            self.store.replace(kind, ns, name, {**existing, **body}, manager=MANAGER)

    # -- jobs --------------------------------------------------------------------------------

    def _job(self, job: dict[str, Any]) -> None:
        done = {
            c.get("type")
            for c in (job.get("status") or {}).get("conditions") or []
            if c.get("status") == "True"
        }
        if done & {"Complete", "Failed"}:
            return  # a finished Job stays as it finished
        self._set_status(JOB, job, _job_status(job, job["metadata"]["name"] in self._failing_jobs))

    # -- routes ------------------------------------------------------------------------------

    def _route(self, route: dict[str, Any]) -> None:
        meta, spec = route["metadata"], route.get("spec", {})
        ns, name = meta["namespace"], meta["name"]
        missing = sorted(
            {
                ref.get("name", "")
                for rule in spec.get("rules") or []
                for ref in rule.get("backendRefs") or []
                if ref.get("kind", "Service") == "Service"
                and ref.get("group", "") == ""
                and self.store.get(SERVICE, ref.get("namespace", ns), ref.get("name", "")) is None
            }
        )
        old_parents = (route.get("status") or {}).get("parents") or []
        parents = []
        for ref in spec.get("parentRefs") or []:
            old = next(
                (p.get("conditions") or [] for p in old_parents if p.get("parentRef") == ref), []
            )
            accepted = name not in self._not_accepted
            conditions = [
                _condition(
                    "Accepted",
                    accepted,
                    "Accepted" if accepted else "NotAllowedByListeners",
                    "Route is accepted"
                    if accepted
                    else "No listener of the parent Gateway allows this route",
                    old,
                ),
                _condition(
                    "ResolvedRefs",
                    not missing,
                    "ResolvedRefs" if not missing else "BackendNotFound",
                    "All references are resolved"
                    if not missing
                    else f"Service(s) not found: {', '.join(missing)}",
                    old,
                ),
            ]
            for condition in conditions:
                condition["observedGeneration"] = meta.get("generation", 1)
            parents.append(
                {"parentRef": ref, "controllerName": CONTROLLER_NAME, "conditions": conditions}
            )
        self._set_status(ROUTE, route, {"parents": parents})


def _job_status(job: dict[str, Any], failed: bool) -> dict[str, Any]:
    """A Job's status once it is done: Complete, or Failed (BackoffLimitExceeded)."""
    old = job.get("status") or {}
    started = old.get("startTime") or now()
    if failed:
        limit = int((job.get("spec") or {}).get("backoffLimit", 6))
        return {
            "startTime": started,
            "active": 0,
            "succeeded": 0,
            "failed": limit + 1,
            "conditions": [
                _condition(
                    "Failed",
                    True,
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                    [],
                )
            ],
        }
    return {
        "startTime": started,
        "completionTime": old.get("completionTime") or now(),
        "active": 0,
        "succeeded": 1,
        "failed": 0,
        "conditions": [_condition("Complete", True, "", "", [])],
    }


def _pod_ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def _clean(status: Any) -> Any:
    """A status without transition times and pod IPs, to compare what a reconcile would change."""
    if isinstance(status, dict):
        return {k: _clean(v) for k, v in status.items() if k not in ("lastTransitionTime", "podIP")}
    if isinstance(status, list):
        return [_clean(v) for v in status]
    return status
