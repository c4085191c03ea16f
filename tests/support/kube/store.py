"""The emulator's object store: resourceVersion, generation, preconditions, patches, apply, dry-run.

Every write goes through here, from HTTP requests and from the controller alike, under one lock,
so a resourceVersion names exactly one state of the store and watch events are totally ordered.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import itertools
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from tests.support.kube import fields
from tests.support.kube.errors import ApiError, bad_request, conflict, invalid, not_found
from tests.support.kube.kinds import Kind, by_kind
from tests.support.kube.patching import json_patch, merge_patch, strategic_merge
from tests.support.kube.validation import validate

Key = tuple[Kind, str, str]  # kind, namespace ("" for cluster-scoped), name

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH)


@dataclass(frozen=True)
class Event:
    """One change, as a watch reports it; `old` lets a filtered watch see objects leave its set."""

    rv: int
    kind: Kind
    type: str  # ADDED, MODIFIED, DELETED
    old: dict[str, Any] | None
    new: dict[str, Any]


def now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _spec_part(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class Store:
    """Objects by (kind, namespace, name), one resourceVersion counter, an ordered event log."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._objects: dict[Key, dict[str, Any]] = {}
        self._owners: dict[Key, fields.Owners] = {}
        self._owner_times: dict[Key, dict[fields.Owner, str]] = {}
        self._rv = 0
        self._ips = itertools.count(2)
        self.events: list[Event] = []
        self.compacted = 0  # watches from a resourceVersion below this get 410 Expired
        self.listeners: list[Callable[[], None]] = []

    # -- reading ---------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        return self._rv

    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            key = (kind, namespace if kind.namespaced else "", name)
            return self._render(key) if key in self._objects else None

    def select(
        self,
        kind: Kind,
        namespace: str | None,
        keep: Callable[[dict[str, Any]], bool] = lambda o: True,
    ) -> tuple[list[dict[str, Any]], int]:
        with self.lock:
            items = [
                self._render(key)
                for key, obj in sorted(self._objects.items(), key=lambda kv: kv[0][1:])
                if key[0] == kind and (namespace is None or key[1] == namespace) and keep(obj)
            ]
            return items, self._rv

    def compact(self) -> int:
        """Forget the event history, as etcd compaction does: older watches get 410 Expired."""
        with self.lock:
            self.events.clear()
            self.compacted = self._rv
            return self._rv

    def events_after(self, rv: int) -> list[Event]:
        with self.lock:
            if not self.events or self.events[-1].rv <= rv:
                return []
            lo, hi = 0, len(self.events)
            while lo < hi:  # events are ordered by rv
                mid = (lo + hi) // 2
                if self.events[mid].rv <= rv:
                    lo = mid + 1
                else:
                    hi = mid
            return self.events[lo:]

    def _render(self, key: Key) -> dict[str, Any]:
        obj = copy.deepcopy(self._objects[key])
        owners = self._owners.get(key)
        if owners:
            times = self._owner_times.get(key, {})
            obj["metadata"]["managedFields"] = fields.managed_fields(
                owners, key[0].api_version, times
            )
        return obj

    # -- writing ---------------------------------------------------------------------------

    def _commit(
        self, key: Key, obj: dict[str, Any] | None, event: str, dry_run: bool
    ) -> dict[str, Any]:
        old = self._objects.get(key)
        if obj is None:  # deletion
            assert old is not None
            if not dry_run:
                del self._objects[key]
                self._owners.pop(key, None)
                self._owner_times.pop(key, None)
                self._rv += 1
                gone = copy.deepcopy(old)
                gone["metadata"]["resourceVersion"] = str(self._rv)
                self.events.append(Event(self._rv, key[0], event, old, gone))
                self._notify()
            return copy.deepcopy(old)
        if dry_run:
            return copy.deepcopy(obj)
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        self._objects[key] = obj
        self.events.append(
            Event(self._rv, key[0], event, old and copy.deepcopy(old), copy.deepcopy(obj))
        )
        self._notify()
        return self._render(key)

    def _notify(self) -> None:
        for listener in list(self.listeners):
            listener()

    def _set_owners(
        self, key: Key, owners: fields.Owners, changed_by: fields.Owner, dry_run: bool
    ) -> None:
        if not dry_run:
            self._owners[key] = owners
            self._owner_times.setdefault(key, {})[changed_by] = now()

    def create(
        self,
        kind: Kind,
        namespace: str,
        body: Any,
        *,
        manager: str = "emulator-seed",
        dry_run: bool = False,
        owners: fields.Owners | None = None,
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request("the body of a create must be a JSON object")
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        ns = namespace if kind.namespaced else ""
        with self.lock:
            if kind.namespaced:
                if meta.get("namespace") not in (None, "", ns):
                    raise bad_request(
                        "the namespace of the provided object does not match "
                        "the namespace sent on the request"
                    )
                if not self._objects.get((by_kind("v1", "Namespace"), "", ns)):
                    raise not_found("namespaces", ns)
                meta["namespace"] = ns
            if meta.get("resourceVersion"):
                raise bad_request("resourceVersion should not be set on objects to be created")
            if not meta.get("name"):
                if not meta.get("generateName"):
                    raise invalid("metadata.name: Required value: name or generateName is required")
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            key = (kind, ns, meta["name"])
            if key in self._objects:
                raise ApiError(
                    409,
                    "AlreadyExists",
                    f'{kind.group_resource} "{meta["name"]}" already exists',
                    {"name": meta["name"]},
                )
            request_view = copy.deepcopy(obj)
            obj["apiVersion"], obj["kind"] = kind.api_version, kind.kind
            meta.pop("managedFields", None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now()
            if kind.has_generation:
                meta["generation"] = 1
            self._defaults(kind, obj)
            validate(kind, obj)
            if owners is None:
                owners = fields.update(kind.kind, {}, request_view, {}, manager)
                changed_by: fields.Owner = (manager, "Update")
            else:
                changed_by = (manager, "Apply")
            self._set_owners(key, owners, changed_by, dry_run)
            return self._commit(key, obj, "ADDED", dry_run)

    def _defaults(self, kind: Kind, obj: dict[str, Any]) -> None:
        """The defaults the API server fills on create that the controller and clients read."""
        spec = obj.setdefault("spec", {}) if kind.kind in ("Deployment", "Service") else {}
        if kind.kind == "Deployment":
            spec.setdefault("replicas", 1)
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)
            spec.setdefault(
                "strategy",
                {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                },
            )
        elif kind.kind == "Service":
            spec.setdefault("type", "ClusterIP")
            ip = next(self._ips)
            spec.setdefault("clusterIP", f"10.96.{ip // 250}.{ip % 250 + 1}")
            for port in spec.get("ports") or []:
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))

    def _existing(self, kind: Kind, namespace: str, name: str) -> tuple[Key, dict[str, Any]]:
        key = (kind, namespace if kind.namespaced else "", name)
        if key not in self._objects:
            raise not_found(kind.group_resource, name)
        return key, self._objects[key]

    def _write(  # noqa: PLR0912  # the server's checks, in its order
        self,
        key: Key,
        current: dict[str, Any],
        new: Any,
        subresource: str | None,
        dry_run: bool,
        *,
        put: bool = False,
        owners: fields.Owners | None = None,
        by: fields.Owner = ("", ""),
    ) -> dict[str, Any]:
        """Store `new` as the next state of `current`, with the server's checks and bookkeeping;
        the field owners change only when the write passes every check."""
        kind, _, name = key
        if not isinstance(new, dict):
            raise invalid("the result is not an object")
        new_meta: dict[str, Any] = new["metadata"] if isinstance(new.get("metadata"), dict) else {}
        sent_rv = new_meta.get("resourceVersion")
        if sent_rv and sent_rv != current["metadata"]["resourceVersion"]:
            raise conflict(kind.group_resource, name)
        if put and not sent_rv and not kind.builtin:
            raise invalid(
                f'{kind.kind}.{kind.group} "{name}" is invalid: metadata.resourceVersion: '
                "Invalid value: 0x0: must be specified for an update"
            )
        if new_meta.get("name", name) != name:
            raise bad_request(
                f"the name of the object ({new_meta.get('name')}) "
                f"does not match the name on the URL ({name})"
            )
        result = copy.deepcopy(current)
        if subresource == "status":
            if "status" in new:
                result["status"] = copy.deepcopy(new["status"])
            else:
                result.pop("status", None)
        else:
            meta = result["metadata"]
            for field in ("labels", "annotations", "ownerReferences", "finalizers"):
                if field in new_meta:
                    meta[field] = copy.deepcopy(new_meta[field])
                else:
                    meta.pop(field, None)
            for field, value in new.items():
                if field not in ("metadata", "status", "apiVersion", "kind"):
                    result[field] = copy.deepcopy(value)
            for field in list(result):
                if field not in ("metadata", "status", "apiVersion", "kind") and field not in new:
                    del result[field]
            if not kind.status:  # no status subresource: status is written like any field
                if "status" in new:
                    result["status"] = copy.deepcopy(new["status"])
                else:
                    result.pop("status", None)
            if kind.kind == "Deployment":
                old_sel = current.get("spec", {}).get("selector")
                if result.get("spec", {}).get("selector") != old_sel:
                    raise invalid(
                        f'Deployment.apps "{name}" is invalid: spec.selector: Invalid value: '
                        "field is immutable"
                    )
            if kind.has_generation and _spec_part(result) != _spec_part(current):
                result["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
        if subresource is None:
            validate(kind, result)
        if owners is not None:
            self._set_owners(key, owners, by, dry_run)
        if result == current:
            return self._render(key)  # a no-op write leaves resourceVersion as it was
        return self._commit(key, result, "MODIFIED", dry_run)

    def replace(
        self,
        kind: Kind,
        namespace: str,
        name: str,
        body: Any,
        *,
        subresource: str | None = None,
        manager: str = "emulator-seed",
        dry_run: bool = False,
    ) -> dict[str, Any]:
        with self.lock:
            key, current = self._existing(kind, namespace, name)
            if not isinstance(body, dict):
                raise bad_request("the body of a replace must be a JSON object")
            owners = None
            if subresource is None:
                owners = fields.update(kind.kind, current, body, self._owners.get(key, {}), manager)
            return self._write(
                key,
                current,
                body,
                subresource,
                dry_run,
                put=True,
                owners=owners,
                by=(manager, "Update"),
            )

    def patch(
        self,
        kind: Kind,
        namespace: str,
        name: str,
        content_type: str,
        body: bytes | Any,
        *,
        subresource: str | None = None,
        manager: str = "emulator-seed",
        force: bool = False,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """One PATCH of any of the four types, as the API server documents each."""
        with self.lock:
            if content_type == APPLY_PATCH:
                return self._apply(
                    kind, namespace, name, body, subresource, manager, force, dry_run
                )
            if content_type == STRATEGIC_PATCH and not kind.builtin:
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    "the body of the request was in an unknown format - "
                    "accepted media types include: "
                    f"{JSON_PATCH}, {MERGE_PATCH}, {APPLY_PATCH}",
                )
            if content_type not in PATCH_TYPES:
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    "the body of the request was in an unknown format - "
                    "accepted media types include: " + ", ".join(PATCH_TYPES),
                )
            key, current = self._existing(kind, namespace, name)
            doc = _decode(body)
            before = copy.deepcopy(current)
            if content_type == JSON_PATCH:
                new = json_patch(before, doc)
            elif not isinstance(doc, dict):
                raise bad_request("the body of a merge patch must be a JSON object")
            elif content_type == MERGE_PATCH:
                new = merge_patch(before, doc)
            else:
                new = strategic_merge(kind.kind, before, doc)
            owners = None
            if subresource is None:
                owners = fields.update(kind.kind, current, new, self._owners.get(key, {}), manager)
            return self._write(
                key, current, new, subresource, dry_run, owners=owners, by=(manager, "Update")
            )

    def _apply(
        self,
        kind: Kind,
        namespace: str,
        name: str,
        body: bytes | Any,
        subresource: str | None,
        manager: str,
        force: bool,
        dry_run: bool,
    ) -> dict[str, Any]:
        config = _decode_yaml(body)
        if not isinstance(config, dict):
            raise bad_request("the applied configuration must be an object")
        if config.get("apiVersion") != kind.api_version or config.get("kind") != kind.kind:
            raise bad_request(
                "the applied configuration must set "
                f"apiVersion {kind.api_version} and kind {kind.kind}"
            )
        if config.get("metadata", {}).get("name") != name:
            raise bad_request(
                f"the name of the object ({config.get('metadata', {}).get('name')}) "
                f"does not match the name on the URL ({name})"
            )
        if subresource is not None:
            raise bad_request(
                "the emulator applies to the main resource only, not to a subresource"
            )
        key = (kind, namespace if kind.namespaced else "", name)
        if key not in self._objects:
            _, owners = fields.apply(
                kind.kind, kind.builtin, kind.api_version, {}, config, {}, manager, force
            )
            return self.create(
                kind, namespace, config, manager=manager, dry_run=dry_run, owners=owners
            )
        current = self._objects[key]
        merged, owners = fields.apply(
            kind.kind,
            kind.builtin,
            kind.api_version,
            current,
            config,
            self._owners.get(key, {}),
            manager,
            force,
        )
        return self._write(
            key, current, merged, None, dry_run, owners=owners, by=(manager, "Apply")
        )

    def delete(
        self,
        kind: Kind,
        namespace: str,
        name: str,
        *,
        preconditions: dict[str, Any] | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        with self.lock:
            key, current = self._existing(kind, namespace, name)
            pre = preconditions or {}
            if pre.get("resourceVersion") not in (None, current["metadata"]["resourceVersion"]):
                raise conflict(kind.group_resource, name)
            if pre.get("uid") not in (None, current["metadata"]["uid"]):
                raise ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {kind.group_resource} "{name}": '
                    f"Precondition failed: UID in precondition: {pre['uid']}, "
                    f"UID in object meta: {current['metadata']['uid']}",
                )
            return self._commit(key, None, "DELETED", dry_run)

    def pod_ip(self) -> str:
        with self.lock:
            n = next(self._ips)
        return f"10.244.{n // 250}.{n % 250 + 1}"


def _decode(body: bytes | Any) -> Any:
    if isinstance(body, bytes):
        try:
            return json.loads(body)
        except ValueError as exc:
            raise bad_request(f"the body of the request is not JSON: {exc}") from exc
    return body


def _decode_yaml(body: bytes | Any) -> Any:
    if isinstance(body, bytes):
        try:
            return yaml.safe_load(body)
        except yaml.YAMLError as exc:
            raise bad_request(f"the applied configuration is not YAML: {exc}") from exc
    return body


def template_hash(template: Any) -> str:
    """A stable short hash of a pod template, as `pod-template-hash` is."""
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
