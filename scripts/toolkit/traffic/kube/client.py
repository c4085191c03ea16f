"""The Kubernetes API as the cluster backends use it: config, bounded retries, dry-run, errors.

Every request goes through `Kube.request`: transient failures (409, 429, 5xx, refused
connections, timeouts) are retried with exponential backoff until the operation's deadline;
permanent ones (401, 403, 404, 400, 422, ...) stop at once with one sentence. With `dry_run`,
writes are printed (method, path, content type, body) instead of sent; reads still go out, as
the writes are computed from what the cluster holds.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote, urlencode

from scripts.toolkit.cli import EXIT_FAILED, EXIT_USAGE, ToolkitError

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
TRANSIENT = frozenset({409, 429, 500, 502, 503, 504})
# Who owns the fields the toolkit writes (managedFields): a server-side apply of the manifests
# by another manager then conflicts on them instead of resetting them (DEPLOYING.md).
FIELD_MANAGER = "ai-rollout-toolkit"
ROLE = "ai-rollout-deployer (k8s/base/rbac.yaml)"
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
Json = dict[str, Any]


class NotFound(ToolkitError):
    """The object (or the namespace, or the API of its kind) does not exist."""


class Conflict(ToolkitError):
    """A guarded write lost: the object changed since it was read (409, or a failed JSON
    Patch `test`, 422); the caller re-reads and tries again."""


class NotConfirmed(ToolkitError):
    """A write went through but the cluster did not confirm it takes effect (a route its
    gateway does not accept, or not yet)."""


class Unreachable(ToolkitError):
    """The API did not answer (or kept answering with transient errors) until the deadline."""


@dataclass(frozen=True)
class ClusterOptions:
    """How to reach the cluster: the kubeconfig and its context (None: the defaults, or the
    in-cluster service account), the namespace, and time limits in seconds."""

    kubeconfig: Path | None = None
    context: str | None = None
    namespace: str | None = None
    api_timeout: float = 30.0  # one operation's retries, all together
    wait_timeout: float = 300.0  # pods becoming ready, a route being accepted
    dry_run: bool = False


@dataclass
class Kube:
    """Requests to one namespace of one API server, counted."""

    api: Any  # kubernetes.client.ApiClient
    namespace: str
    api_timeout: float = 30.0
    wait_timeout: float = 300.0
    dry_run: bool = False
    echo: TextIO = field(default_factory=lambda: sys.stderr)
    calls: int = 0
    request_timeout: float = 10.0
    deadline: float | None = None  # a shared deadline (time.monotonic) for a bounded operation
    sleep: Callable[[float], None] = time.sleep

    @staticmethod
    def clock() -> float:
        return time.monotonic()

    @property
    def host(self) -> str:
        return str(self.api.configuration.host)

    def path(self, api_version: str, plural: str, name: str | None = None, sub: str = "") -> str:
        """The namespaced path of `plural` (and object `name`) in `api_version`."""
        root = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        path = f"{root}/namespaces/{quote(self.namespace)}/{plural}"
        return path + (f"/{quote(name)}" if name else "") + (f"/{sub}" if sub else "")

    def get(self, path: str, *, query: Mapping[str, str] | None = None) -> Json:
        """GET `path` (with `query`): the object or list."""
        return self.request("GET", path, query=query) or {}

    def patch(self, path: str, body: Any, *, content_type: str, guarded: bool = False) -> Json:
        """PATCH `path`; `guarded` (its `test` operations or resourceVersion pin what was read):
        a 409/422 raises Conflict for the caller to re-read, instead of being retried as is.
        In dry-run: the request is printed and the body is returned as sent."""
        if self.dry_run:
            print(
                f"dry-run: PATCH {path}?fieldManager={FIELD_MANAGER}\n"
                f"  Content-Type: {content_type}\n  " + json.dumps(body, sort_keys=True),
                file=self.echo,
                flush=True,
            )
            return {"dry_run": True, "body": body}
        query = {"fieldManager": FIELD_MANAGER}
        sent = self.request(
            "PATCH", path, query=query, body=body, content_type=content_type, guarded=guarded
        )
        return sent or {}

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str | None = None,
        guarded: bool = False,
        deadline: float | None = None,
    ) -> Json | None:
        """Send until an answer other than a transient error, or the deadline (`api_timeout`
        from now); returns the decoded JSON answer."""
        import urllib3  # noqa: PLC0415  # with the kubernetes client, an optional part

        own = self.clock() + self.api_timeout
        deadline = min(d for d in (deadline, self.deadline, own) if d is not None)
        url = self.host + path + (f"?{urlencode(query)}" if query else "")
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        delay, last = 0.1, "no answer"
        while True:
            self.api.update_params_for_auth(headers, None, ["BearerToken"], path, method, body)
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise Unreachable(
                    f"the Kubernetes API at {self.host} did not answer {method} {path} within "
                    f"{self.api_timeout:g} s ({last}); check the cluster and run the command "
                    "again.",
                    exit_code=EXIT_FAILED,
                )
            self.calls += 1
            try:
                response = self.api.rest_client.request(
                    method,
                    url,
                    headers=dict(headers),
                    body=body,
                    _request_timeout=(min(3.0, remaining), min(self.request_timeout, remaining)),
                )
                status, data = response.status, response.read()
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                status, data, last = 0, b"", _first_line(exc)
            if 200 <= status < 300:
                return json.loads(data) if data else {}
            if status:
                last = f"{status} {_message(data)}"
                if guarded and status in (409, 422):
                    raise Conflict(f"{method} {path}: {last}")
                if status not in TRANSIENT:
                    raise self._permanent(method, path, status, _message(data))
            wait = min(delay * (1 + random.random()), 2.0, max(0.0, deadline - self.clock()))  # noqa: S311  # nosec B311  # jitter, not a secret
            self.sleep(wait)
            delay *= 2

    def _permanent(self, method: str, path: str, status: int, message: str) -> ToolkitError:
        kind = path.rstrip("/").split("/")[-2] if path.count("/") > 4 else path
        if status == 401:
            return ToolkitError(
                f"the Kubernetes API at {self.host} refused the credentials ({message}); "
                "renew them or fix --kubeconfig/--context."
            )
        if status == 403:
            return ToolkitError(
                f"forbidden: {message}; bind the Role {ROLE} to this identity in namespace "
                f"{self.namespace}."
            )
        if status == 404:
            return NotFound(f"{method} {path}: not found ({message})")
        return ToolkitError(
            f"the Kubernetes API refused {method} {kind} ({status}: {message}); fix the "
            "object or the options named there.",
            exit_code=EXIT_USAGE,
        )


def _message(data: bytes) -> str:
    """The `message` of a Status answer, else the start of the body."""
    try:
        decoded = json.loads(data)
    except ValueError:
        return data[:200].decode("utf-8", "replace").strip() or "no message"
    if isinstance(decoded, dict) and decoded.get("message"):
        return str(decoded["message"])
    return json.dumps(decoded)[:200]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def connect(options: ClusterOptions, *, echo: TextIO | None = None) -> Kube:
    """A `Kube` for the options: the kubeconfig's context (or, with no kubeconfig anywhere,
    the in-cluster service account); a missing file or context is one sentence."""
    import urllib3  # noqa: PLC0415  # optional part
    from kubernetes import client, config  # noqa: PLC0415  # optional part

    configuration = client.Configuration()
    namespace = options.namespace
    path = options.kubeconfig or _default_kubeconfig()
    if path is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]  # kubernetes is untyped
        namespace = namespace or _read(SERVICE_ACCOUNT_DIR / "namespace") or "default"
    elif path is None or not path.is_file():
        where = f"at {path}" if path else "(KUBECONFIG is unset and ~/.kube/config is missing)"
        raise ToolkitError(
            f"no kubeconfig {where}; pass --kubeconfig, set KUBECONFIG, or run inside the "
            "cluster with a service account."
        )
    else:
        try:
            listed = config.list_kube_config_contexts(config_file=str(path))  # type: ignore[no-untyped-call]  # kubernetes is untyped
            contexts, active = listed
        except (config.ConfigException, ValueError, OSError) as exc:
            raise ToolkitError(f"{path} is not a usable kubeconfig ({exc}); fix it.") from exc
        names = [c["name"] for c in contexts or []]
        if options.context is not None and options.context not in names:
            raise ToolkitError(
                f"{path} has no context {options.context!r}; choose one of: "
                f"{', '.join(names) or 'none'} (--context)."
            )
        chosen = next((c for c in contexts or [] if c["name"] == options.context), active)
        if not chosen:
            raise ToolkitError(
                f"{path} has no current context; pass --context (one of: {', '.join(names)})."
            )
        try:
            config.load_kube_config(  # type: ignore[no-untyped-call]  # kubernetes is untyped
                config_file=str(path),
                context=chosen["name"],
                client_configuration=configuration,
                persist_config=False,
            )
        except (config.ConfigException, ValueError, OSError) as exc:
            raise ToolkitError(
                f"context {chosen['name']!r} of {path} cannot be used ({exc}); fix it."
            ) from exc
        namespace = namespace or chosen.get("context", {}).get("namespace") or "default"
    # Retries are ours (bounded by the operation's deadline), not urllib3's.
    configuration.retries = urllib3.Retry(total=0, connect=0, read=0, redirect=0, status=0)
    return Kube(
        client.ApiClient(configuration),
        namespace,
        api_timeout=options.api_timeout,
        wait_timeout=options.wait_timeout,
        dry_run=options.dry_run,
        echo=echo or sys.stderr,
    )


def _default_kubeconfig() -> Path | None:
    listed = os.environ.get("KUBECONFIG")
    if listed:
        return Path(listed.split(os.pathsep)[0]).expanduser()
    home = Path("~/.kube/config").expanduser()
    return home if home.is_file() else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
