"""The service follows its registry ConfigMap through the Kubernetes API (the stricter emulator):
a change serves within seconds, a bad one keeps the last good registry serving."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client

from app.__main__ import main as app_main
from app.registry.configmap_source import ConfigMapSource, ConfigMapSourceError
from app.registry.store import RegistryStore
from contract.registry.configmap import (
    CONFIGMAP_NAME,
    manifest,
    registry_files,
    to_configmap_key,
)
from tests.support.kube import KubeCluster
from tests.support.polling import poll_until
from tests.support.registry import REGISTRY_DIR, example_prompt
from tests.support.service import StartApp

pytestmark = pytest.mark.integration

NS = "ai-prod"
CANARY_KEY = to_configmap_key("prompts/rag_answer/v2.yaml")
MERGE = "application/merge-patch+json"


def versions(app_url: str) -> dict[str, str]:
    body: dict[str, Any] = httpx.get(f"{app_url}/version", timeout=5).json()
    return {v["version"]: v["status"] for v in body["registry"]["prompts"]["rag_answer"]}


def registry_error(app_url: str) -> str | None:
    error: str | None = httpx.get(f"{app_url}/version", timeout=5).json()["registry_error"]
    return error


@pytest.fixture
def cluster() -> Any:
    with KubeCluster(namespace=NS, controller=False) as running:
        running.create(yaml.safe_load(manifest(REGISTRY_DIR)))
        yield running


def service_account(tmp_path: Path) -> Path:
    """What the kubelet mounts for a pod with a service account token."""
    folder = tmp_path / "serviceaccount"
    folder.mkdir()
    (folder / "namespace").write_text(NS)
    (folder / "token").write_text("pod-token")
    return folder


def test_a_configmap_change_serves_within_seconds_and_a_bad_one_is_refused(
    cluster: KubeCluster, start_app: StartApp, tmp_path: Path
) -> None:
    """Issue 8, item 5: every serving pod applies a registry ConfigMap update within 5 s (the
    watch, not a mount: the folder poll is off here), and a bad update keeps the last good
    registry serving; the service only reads its one ConfigMap, by name."""
    app = start_app(
        registry_reload_seconds="0",
        registry_configmap=CONFIGMAP_NAME,
        kubernetes_api_url=cluster.url,
        kubernetes_service_account_dir=str(service_account(tmp_path)),
    )
    core = client.CoreV1Api(cluster.api_client())
    assert versions(app.url) == {"v1": "production"}

    canary = example_prompt("rag_answer", "v2", status="canary", traffic_percentage=10)
    changed = time.monotonic()
    core.patch_namespaced_config_map(
        CONFIGMAP_NAME, NS, {"data": {CANARY_KEY: canary}}, _content_type=MERGE
    )
    poll_until(
        lambda: versions(app.url) == {"v1": "production", "v2": "canary"},
        timeout=5,
        interval=0.02,
        message="the canary version serves",
    )
    applied = time.monotonic() - changed
    assert applied < 5

    bad = example_prompt("rag_answer", "v2", status="live", traffic_percentage=10)
    core.patch_namespaced_config_map(
        CONFIGMAP_NAME, NS, {"data": {CANARY_KEY: bad}}, _content_type=MERGE
    )
    error = poll_until(
        lambda: registry_error(app.url) or "", timeout=5, message="the bad update is refused"
    )
    assert f"ConfigMap {NS}/{CONFIGMAP_NAME}" in error
    assert "prompts/rag_answer/v2.yaml" in error
    assert versions(app.url) == {"v1": "production", "v2": "canary"}
    answer = httpx.post(
        f"{app.url}/v1/answer", json={"question": "How long do refunds take?"}, timeout=10
    )
    assert answer.status_code == 200

    core.patch_namespaced_config_map(
        CONFIGMAP_NAME, NS, {"data": {CANARY_KEY: None}}, _content_type=MERGE
    )
    poll_until(
        lambda: versions(app.url) == {"v1": "production"} and registry_error(app.url) is None,
        timeout=5,
        message="the rollback serves",
    )

    service = [r for r in cluster.requests if r.user_agent.startswith("python-httpx")]
    assert {r.method for r in service} == {"GET"}
    assert any(r.query.get("watch") == "true" for r in service)
    by_name = [
        r.path.endswith(f"/configmaps/{CONFIGMAP_NAME}")
        or r.query.get("fieldSelector") == f"metadata.name={CONFIGMAP_NAME}"
        for r in service
    ]
    assert all(by_name), "RBAC resourceNames allows only requests that name the ConfigMap"


def test_the_watch_survives_an_api_outage_and_history_compaction(
    cluster: KubeCluster, start_app: StartApp, tmp_path: Path
) -> None:
    """While the API server is down the service keeps serving what it has; when it is back, the
    service reads the ConfigMap again (a resourceVersion too old for a watch is re-read too)
    and serves a change made meanwhile within 5 s."""
    app = start_app(
        registry_reload_seconds="0",
        registry_configmap=CONFIGMAP_NAME,
        kubernetes_api_url=cluster.url,
        kubernetes_service_account_dir=str(service_account(tmp_path)),
    )
    poll_until(
        lambda: any(r.query.get("watch") == "true" for r in cluster.requests),
        timeout=5,
        message="the service watches",
    )
    cluster.stop_server()
    canary = example_prompt("rag_answer", "v2", status="canary", traffic_percentage=10)
    cluster.patch("v1", "ConfigMap", CONFIGMAP_NAME, {"data": {CANARY_KEY: canary}})
    cluster.compact()
    assert versions(app.url) == {"v1": "production"}
    back = time.monotonic()
    cluster.start_server()
    poll_until(
        lambda: versions(app.url) == {"v1": "production", "v2": "canary"},
        timeout=5,
        interval=0.02,
        message="the change made during the outage serves",
    )
    assert time.monotonic() - back < 5
    poll_until(
        lambda: len([r for r in cluster.requests if r.query.get("watch") == "true"]) >= 2,
        timeout=5,
        message="the watch is started again",
    )


async def test_a_watch_from_a_compacted_version_reads_the_configmap_again(
    cluster: KubeCluster, tmp_path: Path, registry_dir: Path
) -> None:
    """A watch resumed from a resourceVersion the server has compacted away ends with 410
    Expired; the source then reads the ConfigMap again instead of missing the change."""
    store = RegistryStore(registry_dir)
    source = ConfigMapSource(
        store,
        api_url=cluster.url,
        namespace=NS,
        name=CONFIGMAP_NAME,
        token_file=None,
        ca_file=None,
    )
    await source._read()
    seen = source.resource_version
    canary = example_prompt("rag_answer", "v2", status="canary", traffic_percentage=10)
    cluster.patch("v1", "ConfigMap", CONFIGMAP_NAME, {"data": {CANARY_KEY: canary}})
    cluster.compact()
    source.resource_version = seen
    with pytest.raises(ConfigMapSourceError, match="410 Expired"):
        await source._follow()
    runner = asyncio.create_task(source.run())
    try:
        for _ in range(100):
            if "v2" in store.current.prompts["rag_answer"].versions:
                break
            await asyncio.sleep(0.05)
        assert store.current.prompts["rag_answer"].canary is not None
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


def test_a_refused_update_leaves_the_registry_folder_as_it_was(registry_dir: Path) -> None:
    """A bad ConfigMap is checked in a scratch folder and never written where the service reads,
    so a pod that restarts afterwards still starts on the last good registry."""
    store = RegistryStore(registry_dir)
    before = {p: p.read_bytes() for p in registry_dir.rglob("*") if p.is_file()}
    files = {path: text.encode() for path, text in registry_files(registry_dir).items()}
    files["prompts/rag_answer/v2.yaml"] = example_prompt("rag_answer", "v2", status="live").encode()
    result = store.adopt(files, source="ConfigMap x/y")
    assert result.outcome == "rejected"
    assert result.error is not None and result.error.startswith("ConfigMap x/y")
    assert {p: p.read_bytes() for p in registry_dir.rglob("*") if p.is_file()} == before
    assert RegistryStore(registry_dir).current.digest == store.current.digest

    files["prompts/rag_answer/v2.yaml"] = example_prompt(
        "rag_answer", "v2", status="canary", traffic_percentage=5
    ).encode()
    assert store.adopt(files, source="ConfigMap x/y").outcome == "reloaded"
    assert (registry_dir / "prompts/rag_answer/v2.yaml").is_file()
    assert store.last_error is None


def test_a_watch_that_cannot_be_set_up_stops_the_start_with_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No namespace (no service account mounted, none set): `python -m app` says what to set."""
    monkeypatch.setenv("APP_REGISTRY_CONFIGMAP", CONFIGMAP_NAME)
    monkeypatch.setenv("APP_KUBERNETES_SERVICE_ACCOUNT_DIR", str(tmp_path))
    monkeypatch.delenv("APP_REGISTRY_CONFIGMAP_NAMESPACE", raising=False)
    assert app_main([]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: APP_REGISTRY_CONFIGMAP is set but the namespace is unknown")
    assert "APP_REGISTRY_CONFIGMAP_NAMESPACE" in line

    monkeypatch.setenv("APP_REGISTRY_CONFIGMAP_NAMESPACE", NS)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("APP_KUBERNETES_API_URL", raising=False)
    assert app_main([]) == 2
    assert "APP_KUBERNETES_API_URL" in capsys.readouterr().err


async def test_a_forbidden_watch_is_said_once_with_what_to_grant(
    cluster: KubeCluster, registry_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """RBAC without `watch`: the service keeps serving, says once what the Role lacks, and keeps
    trying (every 2 s at most, so a fixed Role is followed within the 5 s bound)."""
    cluster.forbid("watch", "configmaps")
    store = RegistryStore(registry_dir)
    source = ConfigMapSource(
        store, api_url=cluster.url, namespace=NS, name=CONFIGMAP_NAME, token_file=None, ca_file=None
    )
    runner = asyncio.create_task(source.run())
    await asyncio.sleep(1.5)
    warnings = [r.getMessage() for r in caplog.records if r.name == "app.registry.configmap_source"]
    assert len(warnings) == 1, warnings
    assert "HTTP 403" in warnings[0] and "get/list/watch" in warnings[0]
    assert sum(1 for r in cluster.requests if r.query.get("watch") == "true") >= 3
    cluster.heal()
    canary = example_prompt("rag_answer", "v2", status="canary", traffic_percentage=10)
    cluster.patch("v1", "ConfigMap", CONFIGMAP_NAME, {"data": {CANARY_KEY: canary}})
    try:
        for _ in range(100):
            if store.current.prompts["rag_answer"].canary is not None:
                break
            await asyncio.sleep(0.05)
        assert store.current.prompts["rag_answer"].canary is not None
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
