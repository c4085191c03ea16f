"""A stricter Kubernetes API emulator with a minimal controller, for the cluster backends' tests.

    from tests.support.kube import KubeCluster

    with KubeCluster(namespace="prod", controller=True, port=None) as cluster:
        cluster.url                 # http://127.0.0.1:<port>, a real HTTP server (subprocesses too)
        cluster.kubeconfig          # Path: context "emulator", namespace "prod" (KUBECONFIG)
        cluster.env()               # os.environ plus KUBECONFIG, for subprocesses
        cluster.api_client()        # kubernetes.client.ApiClient for it
        cluster.create(obj)         # seed any served object (manager "emulator-seed", an Update)
        cluster.create_all(objs)    # seed a rendered overlay (a list of objects), in order
        cluster.apply(obj, field_manager="kustomize", force=False)  # server-side apply, in-process
        cluster.get("apps/v1", "Deployment", "ai-service") -> dict | None
        cluster.objects("v1", "Pod") -> list[dict]
        cluster.delete("v1", "Service", "ai-service-canary")
        cluster.patch("v1", "ConfigMap", "x", {"data": {...}}, content_type=MERGE_PATCH)
        cluster.requests            # list[LoggedRequest]: method, path, query, content_type,
                                    #   body, status, at, user_agent
        cluster.requests_since(mark) / cluster.mark()   # the requests after a point, to count calls
        cluster.fail(status=503, count=None, seconds=None, path_contains=None, method=None) -> Fault
        cluster.heal()              # drop every injected fault
        cluster.forbid(verb="patch", resource="httproutes", name=None)  # 403 as RBAC answers
        cluster.stop_server() / cluster.start_server()  # connection refused, then back
        cluster.controller.never_ready("ai-service-canary", reason="CrashLoopBackOff", image=None)
                                    # reason: CrashLoopBackOff, ImagePullBackOff, ErrImagePull,
                                    # CreateContainerConfigError; image: only pods running it
        cluster.controller.ready("ai-service-canary")
        cluster.controller.not_accepted("ai-service") / .accepted("ai-service")
        cluster.controller.delete_pods("ai-service-canary") / .restore_pods(...)
        cluster.controller.progress_deadline = 0.5   # seconds before ProgressDeadlineExceeded
        cluster.controller.ready_delay = 0.3  # seconds from a pod's creation to its readiness
        cluster.compact()           # forget watch history: older resourceVersions get 410 Expired
        cluster.controller.fail_job("ai-service-migrate")  # a Job fails; others complete at once
        cluster.controller.settle()  # wait until the controller has reacted to every change
        cluster.emulator            # the StrictEmulator (a kmock.KubernetesEmulator subclass)

Served kinds: kinds.KINDS (core Pods, Services, Endpoints, ConfigMaps, Secrets,
ServiceAccounts, Events, Namespaces; apps Deployments, ReplicaSets; batch Jobs; EndpointSlices;
PDB, HPA, NetworkPolicy, Role, RoleBinding; Gateway API HTTPRoute, Gateway, GatewayClass as
custom resources): every kind the k8s/ overlays render.

What the API server documents and the emulator does (tests/k8s/test_emulator.py checks each):
resourceVersion on every object and list, 409 Conflict on a stale one (PUT, merge patch, JSON
Patch); a failed JSON Patch `test` is 422; strategic merge patch merges lists by their merge
keys on built-in kinds and is 415 on custom resources; PUT replaces (422 without resourceVersion
on a custom resource); 422 when a field a rollout writes is invalid (validation.py: HTTPRoute
weights 0..1,000,000, replicas >= 0, ...); `labelSelector` / `fieldSelector` on list and watch;
`limit` / `continue` pages; deletecollection; `dryRun=All` on every write; the `status`
subresource (status ignored on the main resource and vice versa) and the `scale` subresource;
generation bumped on spec changes only; watch from a resourceVersion with `timeoutSeconds`,
410 Expired after `compact()`; server-side apply with managedFields, field-manager conflicts
and `force`.

Deviations that remain: no authentication, and no RBAC beyond `forbid`; schema validation only
of the fields validation.py names (others are stored as sent), no CRD defaulting; a `continue`
token is an offset into the current list, not a consistent snapshot; no OpenAPI documents
(`kubectl apply` needs `--validate=false`) and no Table output (kubectl prints names and ages);
no finalizers or graceful deletion; deletes return a Status, never the object; list items carry
apiVersion/kind; server-side apply covers maps, lists with the built-in merge keys and atomic
lists (every list of a custom resource, as the Gateway API CRDs declare none), not
`x-kubernetes-list-type: set`, apply on subresources, or the `Apply`-after-`Update` ownership
migration, and managedFields a client sends are ignored; watches never send bookmarks, and
expire only after `compact()`; the controller runs rolling updates with maxUnavailable 0 and no
surge limit (new pods all at once, old ones kept until the new are ready), ignores
`spec.paused` and the Recreate strategy, names pods `<replicaset>-NNNNN`, makes one
EndpointSlice per Service named `<service>-emu`, completes every Job at once (`fail_job` aside),
and reports route status without needing the parent Gateway to exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp.web
import yaml
from kubernetes import config as kube_config

from tests.support.kube.controller import Controller
from tests.support.kube.emulator import Fault, LoggedRequest, StrictEmulator
from tests.support.kube.kinds import by_kind
from tests.support.kube.store import APPLY_PATCH, MERGE_PATCH

__all__ = ["Fault", "KubeCluster", "LoggedRequest"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class KubeCluster:
    """The emulator on 127.0.0.1:<free port> in a background thread, with its controller."""

    def __init__(
        self, namespace: str = "prod", *, controller: bool = True, port: int | None = None
    ) -> None:
        self.namespace = namespace
        self.port = port or _free_port()
        self.emulator = StrictEmulator()
        self.controller = Controller(self.emulator.store)
        self._run_controller = controller
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: aiohttp.web.ServerRunner | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="kube-emulator-")
        self.kubeconfig = Path(self._tmp.name) / "kubeconfig"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> KubeCluster:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self.emulator.__aenter__())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="kube-emulator", daemon=True)
        self._thread.start()
        ready.wait(10)
        loop = self._loop

        def wake_watches() -> None:
            loop.call_soon_threadsafe(self.emulator.wake)

        self.emulator.store.listeners.append(wake_watches)
        self.start_server()
        namespace_kind = by_kind("v1", "Namespace")
        for name in dict.fromkeys(("default", self.namespace)):
            self.emulator.store.create(namespace_kind, "", {"metadata": {"name": name}})
        self._write_kubeconfig()
        if self._run_controller:
            self.controller.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.controller.stop()
        with contextlib.suppress(Exception):
            self.stop_server()
        assert self._loop is not None and self._thread is not None
        asyncio.run_coroutine_threadsafe(
            self.emulator.__aexit__(None, None, None), self._loop
        ).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._tmp.cleanup()

    def _call(self, coro: Any) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(15)

    def start_server(self) -> None:
        """Listen (again) on the same port.

        aiohttp serves the kmock handler directly: kmock.Server would also patch aiohttp's
        resolver for the whole process, which must then be undone in reverse order of starting,
        and tests start several clusters and stop and start them in any order."""
        if self._server is not None:
            return

        async def start() -> aiohttp.web.ServerRunner:
            runner = aiohttp.web.ServerRunner(aiohttp.web.Server(self.emulator), shutdown_timeout=2)
            await runner.setup()
            await aiohttp.web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True).start()
            return runner

        self._server = self._call(start())

    def stop_server(self) -> None:
        """Stop listening: clients get connection refused until `start_server`."""
        server, self._server = self._server, None
        if server is not None:
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self.emulator.end_watches)
            self._call(server.cleanup())

    def _write_kubeconfig(self) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "emulator",
            "preferences": {},
            "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
            "users": [{"name": "emulator", "user": {"token": "emulator-token"}}],
            "contexts": [
                {
                    "name": "emulator",
                    "context": {
                        "cluster": "emulator",
                        "user": "emulator",
                        "namespace": self.namespace,
                    },
                }
            ],
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for a subprocess that should talk to this cluster."""
        return {**(os.environ if base is None else base), "KUBECONFIG": str(self.kubeconfig)}

    def api_client(self) -> Any:
        return kube_config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(self.kubeconfig), context="emulator"
        )

    # -- objects -----------------------------------------------------------------------------

    def create(
        self, obj: dict[str, Any], *, field_manager: str = "emulator-seed"
    ) -> dict[str, Any]:
        kind = by_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
        ns = (obj.get("metadata") or {}).get("namespace") or self.namespace
        return self.emulator.store.create(kind, ns, obj, manager=field_manager)

    def create_all(self, objs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        return [self.create(obj) for obj in objs]

    def apply(
        self, obj: dict[str, Any], *, field_manager: str, force: bool = False
    ) -> dict[str, Any]:
        """Server-side apply, as `kubectl apply --server-side --field-manager=...` sends it."""
        kind = by_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
        ns = (obj.get("metadata") or {}).get("namespace") or self.namespace
        return self.emulator.store.patch(
            kind, ns, obj["metadata"]["name"], APPLY_PATCH, obj, manager=field_manager, force=force
        )

    def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        patch: Any,
        *,
        content_type: str = MERGE_PATCH,
        namespace: str | None = None,
    ) -> dict[str, Any]:
        """Change an object in-process (works while the server is stopped)."""
        return self.emulator.store.patch(
            by_kind(api_version, kind), namespace or self.namespace, name, content_type, patch
        )

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        return self.emulator.store.get(
            by_kind(api_version, kind), namespace or self.namespace, name
        )

    def objects(
        self, api_version: str, kind: str, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        return self.emulator.store.select(by_kind(api_version, kind), namespace or self.namespace)[
            0
        ]

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> None:
        self.emulator.store.delete(by_kind(api_version, kind), namespace or self.namespace, name)

    # -- requests and faults -----------------------------------------------------------------

    @property
    def requests(self) -> list[LoggedRequest]:
        return list(self.emulator.log)

    def mark(self) -> int:
        return len(self.emulator.log)

    def compact(self) -> int:
        """Forget the watch history: a watch from an older resourceVersion gets 410 Expired."""
        return self.emulator.store.compact()

    def requests_since(self, mark: int) -> list[LoggedRequest]:
        return list(self.emulator.log[mark:])

    def fail(
        self,
        status: int = 503,
        count: int | None = None,
        seconds: float | None = None,
        path_contains: str | None = None,
        method: str | None = None,
    ) -> Fault:
        """Answer `status` to the next `count` matching requests, or for `seconds`, or to `heal`."""
        until = None if seconds is None else time.monotonic() + seconds
        fault = Fault(
            status=status, count=count, until=until, path_contains=path_contains, method=method
        )
        with self.emulator.fault_lock:
            self.emulator.faults.append(fault)
        return fault

    def heal(self) -> None:
        with self.emulator.fault_lock:
            self.emulator.faults.clear()
            self.emulator.forbidden.clear()

    def forbid(self, verb: str, resource: str, name: str | None = None) -> None:
        """403 Forbidden for that verb ("*" for all) on that resource (plural), as RBAC answers."""
        with self.emulator.fault_lock:
            self.emulator.forbidden.append((verb, resource, name))


@contextlib.contextmanager
def kube_cluster(namespace: str = "prod") -> Iterator[KubeCluster]:
    with KubeCluster(namespace=namespace) as cluster:
        yield cluster
