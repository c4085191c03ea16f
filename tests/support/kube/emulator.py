"""A stricter Kubernetes API emulator: kmock's `KubernetesEmulator`, subclassed.

kmock serves discovery (`/api`, `/apis/...`), runs the HTTP server and streams watch events;
this subclass serves every resource request itself, from `store.Store`, the way the API server
documents it (optimistic concurrency, the four patch types, dry-run, selectors, the `status` and
`scale` subresources), and adds fault injection and a request log for the tests.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp.web
import attrs
import kmock
import yaml

from tests.support.kube.errors import ApiError, bad_request
from tests.support.kube.kinds import KINDS, Kind, by_path
from tests.support.kube.patching import json_patch, merge_patch
from tests.support.kube.selectors import field_selector, label_selector
from tests.support.kube.store import APPLY_PATCH, JSON_PATCH, MERGE_PATCH, Event, Store

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


_SHORT_NAMES = {
    "namespaces": {"ns"},
    "pods": {"po"},
    "services": {"svc"},
    "endpoints": {"ep"},
    "configmaps": {"cm"},
    "serviceaccounts": {"sa"},
    "deployments": {"deploy"},
    "replicasets": {"rs"},
    "poddisruptionbudgets": {"pdb"},
    "horizontalpodautoscalers": {"hpa"},
    "networkpolicies": {"netpol"},
    "events": {"ev"},
}


@dataclass
class LoggedRequest:
    """One request as the emulator received it (logged on arrival, in order), and the status it
    answered (0 while a watch is still streaming)."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: Any  # decoded JSON or YAML when it parses, else the text; None when empty
    at: float  # time.monotonic() when it arrived
    user_agent: str = ""
    status: int = 0


@dataclass
class Fault:
    """Answer `status` to matching requests: the next `count` of them, or until `until`."""

    status: int
    count: int | None = None
    until: float | None = None
    path_contains: str | None = None
    method: str | None = None
    message: str = ""
    served: int = 0

    def matches(self, method: str, path: str, at: float) -> bool:
        if self.count is not None and self.served >= self.count:
            return False
        if self.until is not None and at >= self.until:
            return False
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path_contains is None or self.path_contains in path


@dataclass(frozen=True)
class Route:
    kind: Kind
    namespace: str | None
    name: str | None
    subresource: str | None


def parse_route(path: str) -> Route | Kind | None:
    """The resource a path names; None for a non-resource path (discovery and the like)."""
    parts = path.strip("/").split("/")
    if parts[0] == "api" and len(parts) >= 3:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[0] == "apis" and len(parts) >= 4:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    kind = by_path(group, version, rest[0])
    if kind is None:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    name = rest[1] if len(rest) > 1 else None
    return Route(kind, namespace, name, "/".join(rest[2:]) or None)


@attrs.define(kw_only=True)
class StrictEmulator(kmock.KubernetesEmulator):
    """kmock's emulator with the API server's documented semantics on resource requests."""

    store: Store = attrs.field(factory=Store)
    log: list[LoggedRequest] = attrs.field(factory=list)
    faults: list[Fault] = attrs.field(factory=list)
    forbidden: list[tuple[str, str, str | None]] = attrs.field(factory=list)  # verb, plural, name
    fault_lock: threading.Lock = attrs.field(factory=threading.Lock)
    _changed: asyncio.Event | None = attrs.field(default=None, init=False)
    _epoch: int = attrs.field(default=0, init=False)  # bumped to end the open watches

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for kind in KINDS:  # for kmock's /apis group list
            self.resources[f"{kind.api_version}/{kind.plural}"] = kmock.ResourceInfo(
                kind=kind.kind, namespaced=kind.namespaced
            )

    async def _serve_version(self, request: kmock.Request) -> dict[str, Any]:
        """The APIResourceList of one group version (kmock's names core `/v1` and copies
        short names onto subresources, which kubectl then reports as ambiguous)."""
        group = "" if request.url.path.startswith("/api/") else request.url.path.split("/")[2]
        version = request.url.path.rstrip("/").split("/")[-1]
        kinds = [k for k in KINDS if k.group == group and k.version == version]
        if not kinds:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
        resources: list[dict[str, Any]] = []
        for kind in kinds:
            resources.append(
                {
                    "name": kind.plural,
                    "singularName": kind.kind.lower(),
                    "namespaced": kind.namespaced,
                    "kind": kind.kind,
                    "verbs": verbs,
                    "shortNames": sorted(_SHORT_NAMES.get(kind.plural, set())),
                }
            )
            if kind.status:
                resources.append(
                    {
                        "name": f"{kind.plural}/status",
                        "singularName": "",
                        "namespaced": kind.namespaced,
                        "kind": kind.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
            if kind.scale:
                resources.append(
                    {
                        "name": f"{kind.plural}/scale",
                        "singularName": "",
                        "namespaced": kind.namespaced,
                        "kind": "Scale",
                        "group": "autoscaling",
                        "version": "v1",
                        "verbs": ["get", "patch", "update"],
                    }
                )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    def end_watches(self) -> None:
        """End every open watch (in the loop), as a stopping server drops them."""
        self._epoch += 1
        self.wake()

    def wake(self) -> None:
        """Called (in the loop) after every store change: wakes the watches."""
        if self._changed is not None:
            self._changed.set()
        self._changed = asyncio.Event()

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        body = await raw_request.read()
        at = time.monotonic()
        logged = LoggedRequest(
            method=raw_request.method,
            path=raw_request.path,
            query=dict(raw_request.query),
            content_type=raw_request.headers.get("Content-Type", ""),
            body=_logged_body(body),
            at=at,
            user_agent=raw_request.headers.get("User-Agent", ""),
        )
        self.log.append(logged)
        try:
            response = await self._serve(raw_request, body, at)
        except ApiError as exc:
            headers = {"Retry-After": "1"} if exc.code == 429 else None
            response = aiohttp.web.json_response(exc.status(), status=exc.code, headers=headers)
        logged.status = response.status
        return response

    async def _serve(
        self, raw: aiohttp.web.BaseRequest, body: bytes, at: float
    ) -> aiohttp.web.StreamResponse:
        with self.fault_lock:
            fault = next((f for f in self.faults if f.matches(raw.method, raw.path, at)), None)
            if fault is not None:
                fault.served += 1
        if fault is not None:
            reason = _REASONS.get(fault.status, "InternalError")
            raise ApiError(
                fault.status,
                reason,
                fault.message or f"injected fault: {reason}",
                {"retryAfterSeconds": 1} if fault.status == 429 else {},
            )
        route = parse_route(raw.path)
        if not isinstance(route, Route):
            return await super().__call__(raw)
        self._check_allowed(raw, route)
        return await self._resource(raw, body, route)

    def _check_allowed(self, raw: aiohttp.web.BaseRequest, route: Route) -> None:
        verb = _verb(raw, route)
        for want_verb, plural, name in self.forbidden:
            if (
                want_verb in (verb, "*")
                and plural == route.kind.plural
                and name in (None, route.name)
            ):
                target = (
                    f'{route.kind.group_resource} "{route.name}"'
                    if route.name
                    else route.kind.group_resource
                )
                where = (
                    f' in the namespace "{route.namespace}"'
                    if route.namespace
                    else " at the cluster scope"
                )
                raise ApiError(
                    403,
                    "Forbidden",
                    f'{target} is forbidden: User "system:serviceaccount:default:emulator" '
                    f"cannot {verb} "
                    f'resource "{route.kind.plural}" in API group "{route.kind.group}"{where}',
                    {
                        "name": route.name or "",
                        "group": route.kind.group,
                        "kind": route.kind.plural,
                    },
                )

    async def _resource(  # noqa: PLR0911, PLR0912  # one branch per verb, as the API has
        self, raw: aiohttp.web.BaseRequest, body: bytes, route: Route
    ) -> aiohttp.web.StreamResponse:
        query = raw.query
        kind, ns, name, sub = route.kind, route.namespace or "", route.name, route.subresource
        if kind.namespaced and route.namespace is None and raw.method != "GET":
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        dry_run = _dry_run(query.get("dryRun"))
        manager = (
            query.get("fieldManager") or raw.headers.get("User-Agent", "unknown").split("/")[0]
        )
        if sub not in (None, "status") and not (sub == "scale" and kind.scale):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        store = self.store
        if name is None and raw.method in ("GET", "DELETE"):
            keep = _selection(query, kind)
            if raw.method == "DELETE":  # deletecollection
                items, rv = store.select(kind, route.namespace, keep)
                for item in items:
                    meta = item["metadata"]
                    store.delete(kind, meta.get("namespace", ""), meta["name"], dry_run=dry_run)
                return aiohttp.web.json_response(_list_of(kind, items, rv))
            if query.get("watch") in ("true", "1"):
                return await kmock.Response(  # type: ignore[attr-defined]
                    payload=self._watch(kind, route.namespace, keep, query),
                    headers={"Content-Type": "application/json"},
                )(_kmock_request(raw))
            items, rv = store.select(kind, route.namespace, keep)
            return aiohttp.web.json_response(_page(_list_of(kind, items, rv), query))
        if name is None:
            if raw.method == "POST":
                return aiohttp.web.json_response(
                    store.create(kind, ns, _json(body), manager=manager, dry_run=dry_run),
                    status=201,
                )
            raise ApiError(
                405, "MethodNotAllowed", f"the server does not allow this method on {kind.plural}"
            )
        if sub == "scale":
            return aiohttp.web.json_response(
                self._scale(raw, body, kind, ns, name, manager, dry_run)
            )
        if raw.method == "GET":
            obj = store.get(kind, ns, name)
            if obj is None:
                raise ApiError(
                    404, "NotFound", f'{kind.group_resource} "{name}" not found', {"name": name}
                )
            return aiohttp.web.json_response(obj)
        if raw.method == "PUT":
            return aiohttp.web.json_response(
                store.replace(
                    kind, ns, name, _json(body), subresource=sub, manager=manager, dry_run=dry_run
                )
            )
        if raw.method == "PATCH":
            content_type = raw.headers.get("Content-Type", "").split(";")[0].strip()
            force = query.get("force") in ("true", "1")
            if force and content_type != APPLY_PATCH:
                raise bad_request(
                    "force: Invalid value: true: may not be specified for non-apply patch"
                )
            if content_type == APPLY_PATCH and not query.get("fieldManager"):
                raise bad_request("fieldManager: Required value: is required for apply patch")
            return aiohttp.web.json_response(
                store.patch(
                    kind,
                    ns,
                    name,
                    content_type,
                    body,
                    subresource=sub,
                    manager=manager,
                    force=force,
                    dry_run=dry_run,
                )
            )
        if raw.method == "DELETE":
            options = _json(body) if body else {}
            deleted = store.delete(
                kind, ns, name, preconditions=options.get("preconditions"), dry_run=dry_run
            )
            return aiohttp.web.json_response(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": {
                        "name": name,
                        "group": kind.group,
                        "kind": kind.plural,
                        "uid": deleted["metadata"]["uid"],
                    },
                }
            )
        raise ApiError(405, "MethodNotAllowed", f"the server does not allow {raw.method} here")

    def _scale(
        self,
        raw: aiohttp.web.BaseRequest,
        body: bytes,
        kind: Kind,
        ns: str,
        name: str,
        manager: str,
        dry_run: bool,
    ) -> dict[str, Any]:
        obj = self.store.get(kind, ns, name)
        if obj is None:
            raise ApiError(
                404, "NotFound", f'{kind.group_resource} "{name}" not found', {"name": name}
            )
        scale = _scale_of(obj)
        if raw.method == "GET":
            return scale
        if raw.method == "PUT":
            wanted = _json(body)
        else:
            content_type = raw.headers.get("Content-Type", "").split(";")[0].strip()
            doc = _json(body)
            wanted = (
                json_patch(scale, doc) if content_type == JSON_PATCH else merge_patch(scale, doc)
            )
        sent_rv = (wanted.get("metadata") or {}).get("resourceVersion")
        patch: dict[str, Any] = {
            "spec": {"replicas": (wanted.get("spec") or {}).get("replicas", 0)}
        }
        if sent_rv:
            patch["metadata"] = {"resourceVersion": sent_rv}
        updated = self.store.patch(
            kind, ns, name, MERGE_PATCH, patch, manager=manager, dry_run=dry_run
        )
        return _scale_of(updated)

    async def _watch(
        self, kind: Kind, namespace: str | None, keep: Any, query: Any
    ) -> AsyncIterator[dict[str, Any] | bytes]:
        yield b""  # send the headers now: a quiet watch must not look like a hung request
        loop = asyncio.get_running_loop()
        epoch = self._epoch
        timeout = float(query.get("timeoutSeconds") or 1800)
        deadline = loop.time() + timeout
        since_text = query.get("resourceVersion") or ""
        if since_text in ("", "0"):
            items, since = self.store.select(kind, namespace, keep)
            for item in items:
                yield {"type": "ADDED", "object": item}
        else:
            try:
                since = int(since_text)
            except ValueError:
                since = -1
            expired = since < self.store.compacted
            if since < 0 or expired:
                problem = (
                    ApiError(
                        410,
                        "Expired",
                        f"too old resource version: {since} ({self.store.compacted})",
                    )
                    if expired and since >= 0
                    else ApiError(400, "BadRequest", f"invalid resourceVersion {since_text!r}")
                )
                yield {"type": "ERROR", "object": problem.status()}
                return
        while True:
            for event in self.store.events_after(since):
                since = event.rv
                out = _filtered(event, kind, namespace, keep)
                if out is not None:
                    yield out
            remaining = deadline - loop.time()
            if remaining <= 0 or epoch != self._epoch:
                return
            if self._changed is None:
                self._changed = asyncio.Event()
            changed = self._changed
            if self.store.events_after(since):
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=min(remaining, 1.0))


def _selection(query: Any, kind: Kind) -> Callable[[dict[str, Any]], bool]:
    keep_labels = label_selector(query.get("labelSelector"))
    keep_fields = field_selector(query.get("fieldSelector"), kind.kind)
    return lambda obj: keep_labels(obj) and keep_fields(obj)


def _list_of(kind: Kind, items: list[dict[str, Any]], rv: int) -> dict[str, Any]:
    return {
        "kind": f"{kind.kind}List",
        "apiVersion": kind.api_version,
        "metadata": {"resourceVersion": str(rv)},
        "items": items,
    }


def _page(listed: dict[str, Any], query: Any) -> dict[str, Any]:
    """`limit` and `continue` (chunked lists): a page and a token for the rest. The token is
    an offset into the current list, not a snapshot as on a real server (see the package doc)."""
    try:
        limit = int(query.get("limit") or 0)
        start = (
            int(base64.urlsafe_b64decode(query["continue"]).decode())
            if query.get("continue")
            else 0
        )
    except ValueError as exc:
        raise bad_request(f"invalid limit or continue parameter: {exc}") from exc
    items = listed["items"][start:]
    if limit > 0 and len(items) > limit:
        listed["metadata"]["continue"] = base64.urlsafe_b64encode(
            str(start + limit).encode()
        ).decode()
        listed["metadata"]["remainingItemCount"] = len(items) - limit
        items = items[:limit]
    listed["items"] = items
    return listed


def _filtered(  # noqa: PLR0911  # the watch cases, one return each
    event: Event, kind: Kind, namespace: str | None, keep: Any
) -> dict[str, Any] | None:
    """The event a filtered watch reports: an object leaving the selection is DELETED for it."""
    if event.kind != kind:
        return None
    if namespace is not None and event.new.get("metadata", {}).get("namespace") != namespace:
        return None
    now_in = event.type != "DELETED" and keep(event.new)
    was_in = event.old is not None and keep(event.old)
    if event.type == "DELETED":
        return {"type": "DELETED", "object": event.new} if was_in else None
    if now_in and not was_in:
        return {"type": "ADDED", "object": event.new}
    if now_in:
        return {"type": "MODIFIED", "object": event.new}
    if was_in:
        return {"type": "DELETED", "object": event.new}
    return None


def _scale_of(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    labels = (obj.get("spec", {}).get("selector") or {}).get("matchLabels") or {}
    return {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": obj.get("spec", {}).get("replicas", 0)},
        "status": {
            "replicas": obj.get("status", {}).get("replicas", 0),
            "selector": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
        },
    }


def _verb(raw: aiohttp.web.BaseRequest, route: Route) -> str:
    if raw.method == "GET":
        if route.name is not None:
            return "get"
        return "watch" if raw.query.get("watch") in ("true", "1") else "list"
    return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(
        raw.method, raw.method.lower()
    )


def _dry_run(value: str | None) -> bool:
    if value is None:
        return False
    if value != "All":
        raise bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
    return True


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        raise bad_request(f"the body of the request is not JSON: {exc}") from exc


def _logged_body(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        pass
    try:
        return yaml.safe_load(body)
    except yaml.YAMLError:
        return body.decode(errors="replace")


def _kmock_request(raw: aiohttp.web.BaseRequest) -> kmock.Request:
    """The kmock request its renderer needs to stream a response on `raw`."""
    return kmock.Request(method=raw.method, url=raw.url, raw_request=raw)


__all__ = ["Fault", "LoggedRequest", "Route", "StrictEmulator", "field"]
