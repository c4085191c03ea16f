"""Follow the registry ConfigMap through the Kubernetes API, so a change serves within seconds.

A mounted ConfigMap reaches the pod only when the kubelet next syncs it (a minute or more); a
watch on the API hears the change at once. The service reads its one ConfigMap (a Role limited by
`resourceNames` to it, verbs get/list/watch: k8s/base/ai-service.yaml), decodes the keys with the
contract (`prompts--rag_answer--v1.yaml` -> `prompts/rag_answer/v1.yaml`) and hands the files to
`RegistryStore.adopt`, which validates them in full before anything serves and keeps the last
good registry on a bad update. The token and namespace come from the pod's service account.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
from pathlib import Path
from typing import Any

import httpx

from app.core.config import Settings
from app.registry.store import RegistryStore
from contract.registry.configmap import read_data

log = logging.getLogger(__name__)

WATCH_SECONDS = 240  # the server ends each watch after this; the next one starts where it ended
RETRY_SECONDS = (0.25, 0.5, 1.0, 2.0)  # back-off while the API cannot be reached


class ConfigMapSourceError(ValueError):
    """The ConfigMap watch is asked for but cannot be set up; the message says what to set."""


class ConfigMapSource:
    """Keeps `store` on the registry ConfigMap `name` in `namespace` until cancelled."""

    def __init__(
        self,
        store: RegistryStore,
        *,
        api_url: str,
        namespace: str,
        name: str,
        token_file: Path | None,
        ca_file: Path | None,
    ) -> None:
        self.store = store
        self.name = name
        self.namespace = namespace
        self.token_file = token_file
        verify: ssl.SSLContext | bool = True
        if ca_file is not None and ca_file.is_file():
            verify = ssl.create_default_context(cafile=str(ca_file))
        self._client = httpx.AsyncClient(
            base_url=api_url, verify=verify, timeout=httpx.Timeout(10.0, read=WATCH_SECONDS + 30)
        )
        self._path = f"/api/v1/namespaces/{namespace}/configmaps"
        self.resource_version: str | None = None
        self._failures = 0  # in a row, until a watch is open again

    @classmethod
    def from_settings(cls, settings: Settings, store: RegistryStore) -> ConfigMapSource | None:
        """The source `APP_REGISTRY_CONFIGMAP` asks for (None when unset)."""
        where = locate(settings)
        if where is None:
            return None
        api_url, namespace = where
        account = settings.kubernetes_service_account_dir
        token = account / "token"
        return cls(
            store,
            api_url=api_url,
            namespace=namespace,
            name=settings.registry_configmap,
            token_file=token if token.is_file() else None,
            ca_file=account / "ca.crt",
        )

    def _headers(self) -> dict[str, str]:
        # Read every time: projected service account tokens are rotated by the kubelet.
        token = _read(self.token_file) if self.token_file is not None else ""
        return {"Authorization": f"Bearer {token}"} if token else {}

    async def run(self) -> None:
        """Read the ConfigMap, then watch it; on any failure, back off and start again."""
        try:
            while True:
                try:
                    await self._read()
                    await self._follow()
                except (httpx.HTTPError, ConfigMapSourceError, ValueError) as exc:
                    delay = RETRY_SECONDS[min(self._failures, len(RETRY_SECONDS) - 1)]
                    if self._failures % 30 == 0:  # the first failure, then about once a minute
                        log.warning(
                            "registry ConfigMap %s/%s: %s; serving %s, retrying every %.2g s",
                            self.namespace,
                            self.name,
                            exc,
                            self.store.current.digest[:12],
                            delay,
                        )
                    self._failures += 1
                    await asyncio.sleep(delay)
        finally:
            await self._client.aclose()

    async def _read(self) -> None:
        response = await self._client.get(f"{self._path}/{self.name}", headers=self._headers())
        self._check(response)
        obj = response.json()
        await self._adopt(obj)

    async def _follow(self) -> None:
        """Watch from the version read until the server ends the watch with an error (410
        Gone after compaction included: the caller reads again)."""
        while True:
            params = {
                "watch": "true",
                "fieldSelector": f"metadata.name={self.name}",  # what resourceNames RBAC allows
                "resourceVersion": self.resource_version or "",
                "timeoutSeconds": str(WATCH_SECONDS),
                "allowWatchBookmarks": "true",
            }
            async with self._client.stream(
                "GET", self._path, params=params, headers=self._headers()
            ) as response:
                if response.status_code != httpx.codes.OK:
                    await response.aread()
                    self._check(response)
                if self._failures:
                    log.info("registry ConfigMap %s/%s: followed again", self.namespace, self.name)
                    self._failures = 0
                async for line in response.aiter_lines():
                    if line.strip():
                        await self._event(json.loads(line))

    async def _event(self, event: dict[str, Any]) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind in ("ADDED", "MODIFIED"):
            await self._adopt(obj)
        elif kind == "BOOKMARK":
            self.resource_version = obj.get("metadata", {}).get("resourceVersion")
        elif kind == "DELETED":
            raise ConfigMapSourceError("the ConfigMap was deleted; the last registry keeps serving")
        elif kind == "ERROR":
            raise ConfigMapSourceError(
                f"the watch ended: {obj.get('code')} {obj.get('reason')}: {obj.get('message')}"
            )

    async def _adopt(self, obj: dict[str, Any]) -> None:
        self.resource_version = obj.get("metadata", {}).get("resourceVersion")
        source = f"ConfigMap {self.namespace}/{self.name}"
        try:
            files = read_data(obj.get("data") or {})
        except ValueError as exc:
            await asyncio.to_thread(self.store.refuse, f"{source}: {exc}")
            return
        await asyncio.to_thread(self.store.adopt, files, source=source)

    def _check(self, response: httpx.Response) -> None:
        if response.status_code == httpx.codes.OK:
            return
        try:
            message = response.json().get("message", "")
        except ValueError:
            message = response.text[:200]
        hint = {
            401: "the service account token is missing or expired",
            403: "the service account needs get/list/watch on it (k8s/base/ai-service.yaml)",
            404: "create it (k8s/base/registry-configmap.yaml) or fix APP_REGISTRY_CONFIGMAP",
        }.get(response.status_code, "")
        raise ConfigMapSourceError(
            f"HTTP {response.status_code} {message}" + (f": {hint}" if hint else "")
        )


def locate(settings: Settings) -> tuple[str, str] | None:
    """The API URL and namespace of the registry ConfigMap (None when the watch is off); a
    ConfigMapSourceError says which setting is missing."""
    if not settings.registry_configmap:
        return None
    account = settings.kubernetes_service_account_dir
    namespace = settings.registry_configmap_namespace or _read(account / "namespace")
    if not namespace:
        raise ConfigMapSourceError(
            "APP_REGISTRY_CONFIGMAP is set but the namespace is unknown: set "
            "APP_REGISTRY_CONFIGMAP_NAMESPACE, or mount the pod's service account token."
        )
    api_url = settings.kubernetes_api_url or _in_cluster_url()
    if not api_url:
        raise ConfigMapSourceError(
            "APP_REGISTRY_CONFIGMAP is set but the Kubernetes API is unknown: set "
            "APP_KUBERNETES_API_URL (in a pod, KUBERNETES_SERVICE_HOST names it)."
        )
    return api_url, namespace


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def _in_cluster_url() -> str:
    host, port = (
        os.environ.get("KUBERNETES_SERVICE_HOST"),
        os.environ.get("KUBERNETES_SERVICE_PORT"),
    )
    if not host or not port:
        return ""
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
