"""The replicas, service-selector and rolling backends, and reaching a cluster, on the emulator."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kubernetes.config import incluster_config

from contract.tracks import Track
from scripts.toolkit import registry_ops
from scripts.toolkit.cli import EXIT_FAILED, EXIT_TRAFFIC_UNKNOWN, EXIT_USAGE, ToolkitError
from scripts.toolkit.migrations.job import JOB_MANIFEST, read_manifest, run_migration_job
from scripts.toolkit.traffic.kube import client
from scripts.toolkit.traffic.kube.client import ClusterOptions, Kube, connect
from scripts.toolkit.traffic.kube.gateway_api import GatewayApiBackend
from scripts.toolkit.traffic.kube.registry import ConfigMapStore
from scripts.toolkit.traffic.kube.replicas import ReplicasBackend
from scripts.toolkit.traffic.kube.rolling import RollingBackend
from scripts.toolkit.traffic.kube.service_selector import ServiceSelectorBackend
from scripts.toolkit.traffic.kube.workloads import Names, scale, set_image
from tests.k8s.tools import K8S
from tests.scripts.toolkit.traffic.conftest import IMAGE, deploy_canary
from tests.support.kube import KubeCluster, LoggedRequest
from tests.support.kube.emulator import Route, parse_route
from tests.support.kube_objects import NAMESPACE, seed, shas
from tests.support.registry import EXAMPLES


def replicas_of(cluster: KubeCluster, name: str) -> int:
    found = cluster.get("apps/v1", "Deployment", name)
    assert found is not None
    return int(found["spec"]["replicas"])


def image_of(cluster: KubeCluster, name: str) -> str:
    found = cluster.get("apps/v1", "Deployment", name)
    assert found is not None
    return str(found["spec"]["template"]["spec"]["containers"][0]["image"])


# -- replicas ------------------------------------------------------------------------------


def test_replicas_split_the_pods_and_a_rollback_gives_them_back(
    cluster: KubeCluster, kube: Kube
) -> None:
    scale(kube, "ai-service", 4)
    deploy_canary(kube, cluster, replicas=0)
    backend = ReplicasBackend(kube, Names())
    state = backend.set_canary_weight(50)
    assert (replicas_of(cluster, "ai-service"), replicas_of(cluster, "ai-service-canary")) == (2, 2)
    assert state.canary_weight == 50
    state = backend.set_canary_weight(5)  # at least one pod while the share is above 0
    assert replicas_of(cluster, "ai-service-canary") == 1 and state.canary_weight == 25
    cluster.controller.delete_pods("ai-service-canary")
    moved, state = backend.rollback()
    assert moved and state.canary_weight == 0
    assert (replicas_of(cluster, "ai-service"), replicas_of(cluster, "ai-service-canary")) == (4, 0)


def test_replicas_promotion_gives_stable_the_canarys_image(
    cluster: KubeCluster, kube: Kube
) -> None:
    scale(kube, "ai-service", 4)
    sha = deploy_canary(kube, cluster, replicas=0)
    backend = ReplicasBackend(kube, Names())
    backend.set_canary_weight(50)
    state = backend.promote_canary()
    assert image_of(cluster, "ai-service") == f"{IMAGE}:{sha}"
    assert (replicas_of(cluster, "ai-service"), replicas_of(cluster, "ai-service-canary")) == (4, 0)
    assert state.versions[Track.STABLE] == sha and state.canary_weight == 0


def test_replicas_never_leave_traffic_on_pods_that_never_get_ready(
    cluster: KubeCluster, kube: Kube
) -> None:
    scale(kube, "ai-service", 4)
    deploy_canary(kube, cluster, replicas=0)
    cluster.controller.never_ready("ai-service-canary", reason="CrashLoopBackOff")
    with pytest.raises(ToolkitError) as caught:
        ReplicasBackend(kube, Names()).set_canary_weight(50)
    assert caught.value.exit_code == EXIT_FAILED
    assert "CrashLoopBackOff" in caught.value.message and "pod ai-service-canary-" in (
        caught.value.message
    )
    assert (replicas_of(cluster, "ai-service"), replicas_of(cluster, "ai-service-canary")) == (4, 0)


def test_replicas_stop_when_an_hpa_scales_a_track_they_would_scale(
    cluster: KubeCluster, kube: Kube
) -> None:
    """The base's HorizontalPodAutoscaler on ai-service would set stable's replicas back after
    each step: the step stops first, with one sentence, and scales nothing."""
    scale(kube, "ai-service", 4)
    deploy_canary(kube, cluster, replicas=0)
    (hpa,) = [
        d
        for d in yaml.safe_load_all((K8S / "base" / "ai-service.yaml").read_text())
        if d and d["kind"] == "HorizontalPodAutoscaler"
    ]
    other = {**hpa, "metadata": {"name": "model-server"}}
    other["spec"] = {**hpa["spec"], "scaleTargetRef": {**hpa["spec"]["scaleTargetRef"]}}
    other["spec"]["scaleTargetRef"]["name"] = "model-server"
    cluster.create(other)  # an HPA on another Deployment is no concern
    ReplicasBackend(kube, Names()).set_canary_weight(50)
    ReplicasBackend(kube, Names()).rollback()
    cluster.create(hpa)
    with pytest.raises(ToolkitError) as caught:
        ReplicasBackend(kube, Names()).set_canary_weight(50)
    assert caught.value.message.startswith(
        "HorizontalPodAutoscaler ai-service scales Deployment ai-service and would undo"
    )
    assert "--backend gateway-api" in caught.value.message
    assert (replicas_of(cluster, "ai-service"), replicas_of(cluster, "ai-service-canary")) == (4, 0)


# -- service-selector ------------------------------------------------------------------------


def test_a_switch_remembers_the_color_before_and_a_rollback_returns_to_it() -> None:
    with KubeCluster(namespace=NAMESPACE) as cluster:
        seed(cluster, "blue-green", sha=shas()[1])
        kube = connect(ClusterOptions(kubeconfig=cluster.kubeconfig, wait_timeout=3))
        set_image(kube, "ai-service-green", f"{IMAGE}:{shas()[0]}", {})
        scale(kube, "ai-service-green", 1)
        cluster.controller.settle()
        backend = ServiceSelectorBackend(kube, Names())
        state = backend.switch("green")
        service = cluster.get("v1", "Service", "ai-service")
        assert service is not None and service["spec"]["selector"]["track"] == "green"
        assert state.active == "green" and state.previous == "blue"
        assert state.versions["green"] == shas()[0]
        moved, state = backend.rollback()
        assert moved and state.active == "blue"
        service = cluster.get("v1", "Service", "ai-service")
        assert service is not None and service["spec"]["selector"]["track"] == "blue"
        assert backend.state().previous is None
        assert backend.rollback()[0] is False  # idempotent
        with pytest.raises(ToolkitError, match="switches whole colors"):
            backend.set_canary_weight(5)


def test_a_switch_to_a_color_that_is_not_ready_moves_nothing() -> None:
    with KubeCluster(namespace=NAMESPACE) as cluster:
        seed(cluster, "blue-green", sha=shas()[1])
        kube = connect(ClusterOptions(kubeconfig=cluster.kubeconfig, wait_timeout=2))
        cluster.controller.never_ready("ai-service-green", reason="ImagePullBackOff")
        set_image(kube, "ai-service-green", f"{IMAGE}:does-not-exist", {})
        scale(kube, "ai-service-green", 1)
        with pytest.raises(ToolkitError) as caught:
            ServiceSelectorBackend(kube, Names()).switch("green")
        assert "ImagePullBackOff" in caught.value.message
        service = cluster.get("v1", "Service", "ai-service")
        assert service is not None and service["spec"]["selector"]["track"] == "blue"


# -- rolling -------------------------------------------------------------------------------


def test_a_rolling_update_that_never_gets_ready_is_undone(cluster: KubeCluster, kube: Kube) -> None:
    cluster.controller.never_ready("ai-service", reason="ImagePullBackOff")
    before = image_of(cluster, "ai-service")
    with pytest.raises(ToolkitError) as caught:
        RollingBackend(kube, Names()).deploy(f"{IMAGE}:missing", {})
    assert caught.value.exit_code == EXIT_FAILED
    assert "ImagePullBackOff" in caught.value.message and "undone" in caught.value.message
    assert image_of(cluster, "ai-service") == before


def test_a_rolling_update_rolls_out_and_a_rollback_undoes_it(
    cluster: KubeCluster, kube: Kube
) -> None:
    before = image_of(cluster, "ai-service")
    backend = RollingBackend(kube, Names())
    state = backend.deploy(f"{IMAGE}:{shas()[0]}", {})
    assert state.versions[Track.STABLE] == shas()[0]
    deployment = cluster.get("apps/v1", "Deployment", "ai-service")
    assert deployment is not None
    pod = deployment["spec"]["template"]["spec"]
    images = {c["image"] for c in [*pod["initContainers"], *pod["containers"]]}
    assert images == {f"{IMAGE}:{shas()[0]}"}  # the registry sidecars run the same build
    moved, _ = backend.rollback()
    assert moved and image_of(cluster, "ai-service") == before
    assert backend.rollback()[0] is False


def test_a_rolling_rollback_against_an_unreachable_cluster_is_unknown(
    cluster: KubeCluster,
) -> None:
    kube = connect(ClusterOptions(kubeconfig=cluster.kubeconfig, api_timeout=1))
    cluster.stop_server()
    with pytest.raises(ToolkitError) as caught:
        RollingBackend(kube, Names()).rollback()
    assert caught.value.exit_code == EXIT_TRAFFIC_UNKNOWN


# -- reaching the cluster ------------------------------------------------------------------


def test_a_missing_kubeconfig_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(ToolkitError) as caught:
        connect(ClusterOptions(kubeconfig=tmp_path / "nope"))
    assert caught.value.message.startswith(f"no kubeconfig at {tmp_path / 'nope'}; pass")
    assert caught.value.exit_code == EXIT_USAGE


def test_an_unknown_context_names_the_ones_there(cluster: KubeCluster) -> None:
    with pytest.raises(ToolkitError) as caught:
        connect(ClusterOptions(kubeconfig=cluster.kubeconfig, context="prod"))
    assert "has no context 'prod'; choose one of: emulator" in caught.value.message


def test_the_namespace_comes_from_the_context_unless_given(cluster: KubeCluster) -> None:
    assert connect(ClusterOptions(kubeconfig=cluster.kubeconfig)).namespace == NAMESPACE
    given = connect(ClusterOptions(kubeconfig=cluster.kubeconfig, namespace="other"))
    assert given.namespace == "other"


def test_transient_errors_are_retried_and_permanent_ones_are_not(
    cluster: KubeCluster, kube: Kube
) -> None:
    deploy_canary(kube, cluster)
    for status in (429, 500, 502, 504):
        cluster.fail(status=status, count=1)
    mark = cluster.mark()
    path = kube.path("apps/v1", "deployments", "ai-service")
    assert kube.get(path)["metadata"]["name"] == "ai-service"
    assert [r.status for r in cluster.requests_since(mark)] == [429, 500, 502, 504, 200]
    cluster.fail(status=400, count=1)
    mark = cluster.mark()
    with pytest.raises(ToolkitError):
        kube.get(path)
    assert len(cluster.requests_since(mark)) == 1


# -- the Role ------------------------------------------------------------------------------


def granted() -> list[tuple[tuple[str, str], set[str], set[str]]]:
    """Each rule of the Role in k8s/base/rbac.yaml: (group, plural), verbs, resourceNames."""
    documents = yaml.safe_load_all((K8S / "base" / "rbac.yaml").read_text())
    (role,) = [
        d
        for d in documents
        if d and d["kind"] == "Role" and d["metadata"]["name"] == "ai-rollout-deployer"
    ]
    return [
        ((group, resource), set(rule["verbs"]), set(rule.get("resourceNames", [])))
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    ]


def used(requests: list[LoggedRequest]) -> set[tuple[str, str, str, str | None]]:
    """(group, plural, verb, name) of each resource request."""
    seen = set()
    for request in requests:
        route = parse_route(request.path)
        if not isinstance(route, Route):
            continue
        verb = {
            "GET": "get" if route.name else "list",
            "PATCH": "patch",
            "POST": "create",
            "DELETE": "delete",
        }.get(request.method, "?")
        seen.add((route.kind.group, route.kind.plural, verb, route.name))
    return seen


def test_the_role_grants_exactly_what_the_backends_send(cluster: KubeCluster, kube: Kube) -> None:
    """Every backend's operations, successful and failing, on both overlays, and the migration
    Job (completed and failed), and a prompt rollout on the registry ConfigMap: each request is
    one a rule of the Role allows, and every verb the Role grants is used."""
    scale(kube, "ai-service", 4)
    deploy_canary(kube, cluster, replicas=0)
    replicas = ReplicasBackend(kube, Names())
    replicas.set_canary_weight(50)
    replicas.rollback()
    deploy_canary(kube, cluster)
    gateway = GatewayApiBackend(kube, Names())
    gateway.set_canary_weight(20)
    gateway.promote_canary()
    cluster.controller.never_ready("ai-service", reason="CrashLoopBackOff")
    with pytest.raises(ToolkitError):
        RollingBackend(kube, Names()).deploy(f"{IMAGE}:{shas()[2]}", {})
    job = read_manifest(JOB_MANIFEST)
    for phase in ("expand", "contract"):  # the second replaces the first
        run_migration_job(
            kube, job, image=f"{IMAGE}:{shas()[0]}", phase=phase, sha=shas()[0], env_from=None,
            timeout=3,
        )  # fmt: skip
    cluster.controller.fail_job(job["metadata"]["name"])
    with pytest.raises(ToolkitError, match="failed"):
        run_migration_job(
            kube, job, image=f"{IMAGE}:{shas()[0]}", phase="expand", sha=shas()[0], env_from=None,
            timeout=3,
        )  # fmt: skip
    prompt = ConfigMapStore(kube)  # a prompt rollout on the registry ConfigMap
    v2 = EXAMPLES / "rag_answer" / "v2.yaml"
    prompt.change(lambda d: registry_ops.add_version(d, "rag_answer", v2))
    prompt.change(lambda d: registry_ops.start_canary(d, "rag_answer", "v2", 5))
    prompt.change(lambda d: registry_ops.rollback(d, "rag_answer"), rollback=True)
    requests = cluster.requests
    with KubeCluster(namespace=NAMESPACE) as colors:
        seed(colors, "blue-green", sha=shas()[1])
        kube = connect(ClusterOptions(kubeconfig=colors.kubeconfig, wait_timeout=3))
        set_image(kube, "ai-service-green", f"{IMAGE}:{shas()[0]}", {})
        scale(kube, "ai-service-green", 1)
        colors.controller.settle()
        mark = colors.mark()
        ServiceSelectorBackend(kube, Names()).switch("green")
        ServiceSelectorBackend(kube, Names()).rollback()
        requests += colors.requests_since(mark)
    rules = granted()
    sent = used(requests)
    for group, plural, verb, name in sent:
        allowed = any(
            key == (group, plural) and verb in verbs and (not names or name in names)
            for key, verbs, names in rules
        )
        assert allowed, f"no rule of the Role grants {verb} on {plural}/{name}"
    everything = {(g, p, v) for g, p, v, _ in sent}
    unused = {
        (group, plural, verb) for (group, plural), verbs, _ in rules for verb in verbs
    } - everything
    assert not unused, f"the Role grants what no backend uses: {sorted(unused)}"


def test_in_a_pod_the_service_account_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No kubeconfig anywhere, inside a pod: the mounted token, CA and namespace (the paths
    the kubelet mounts are moved to a scratch folder)."""
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("emulator-token")
    (account / "ca.crt").write_text("not used over http")
    (account / "namespace").write_text(NAMESPACE)
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(account / "token"))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(account / "ca.crt"))
    monkeypatch.setattr(client, "SERVICE_ACCOUNT_DIR", account)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    kube = connect(ClusterOptions())
    assert kube.namespace == NAMESPACE
    assert kube.host == "https://127.0.0.1:6443"  # the API server's address, from the pod's env
    headers: dict[str, str] = {}
    kube.api.update_params_for_auth(headers, None, ["BearerToken"], "/", "GET", None)
    assert headers["authorization"].lower() == "bearer emulator-token"
