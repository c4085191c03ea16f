"""The gateway-api backend against the stricter API emulator, over HTTP with the real client."""

from __future__ import annotations

import copy
import io
import json
import time
from typing import Any

import pytest

from contract.tracks import Track
from scripts.toolkit.cli import EXIT_FAILED, EXIT_TRAFFIC_UNKNOWN, EXIT_USAGE, ToolkitError
from scripts.toolkit.traffic.kube.client import ClusterOptions, Kube, connect
from scripts.toolkit.traffic.kube.gateway_api import TOTAL, GatewayApiBackend, units
from scripts.toolkit.traffic.kube.workloads import Names
from tests.scripts.toolkit.traffic.conftest import deploy_canary
from tests.support.kube import KubeCluster

ROUTE = ("gateway.networking.k8s.io/v1", "HTTPRoute", "ai-service")
ROUTE_PATH = "/apis/gateway.networking.k8s.io/v1/namespaces/ai-staging/httproutes/ai-service"
# A rule of the user's own: a header match and a filter the backend must never touch.
THEIR_RULE = {
    "name": "beta-testers",
    "matches": [{"headers": [{"name": "x-beta", "value": "1"}]}],
    "filters": [
        {
            "type": "RequestHeaderModifier",
            "requestHeaderModifier": {"add": [{"name": "x-b", "value": "1"}]},
        }
    ],
    "backendRefs": [{"name": "ai-service-canary", "port": 8000, "weight": 1}],
}


def route(cluster: KubeCluster) -> dict[str, Any]:
    found = cluster.get(*ROUTE)
    assert found is not None
    return found


def weights(cluster: KubeCluster) -> dict[str, int]:
    rule = next(r for r in route(cluster)["spec"]["rules"] if r.get("name") == "ai-service")
    return {ref["name"]: ref["weight"] for ref in rule["backendRefs"]}


def backend(kube: Kube, **names: str) -> GatewayApiBackend:
    return GatewayApiBackend(kube, Names(**names))


def test_percent_maps_to_integers_of_a_million_and_reads_back_exactly(
    cluster: KubeCluster, kube: Kube
) -> None:
    deploy_canary(kube, cluster)
    for share, expected in ((5, 50_000), (33.3333, 333_333), (0.0001, 1), (100, TOTAL)):
        state = backend(kube).set_canary_weight(share)
        assert weights(cluster) == {
            "ai-service-stable": TOTAL - expected,
            "ai-service-canary": expected,
        }
        assert state.canary_weight == pytest.approx(share, abs=1e-9)
    assert units(12.5) == 125_000


def test_a_step_changes_only_the_weights_of_the_owned_rule(
    cluster: KubeCluster, kube: Kube
) -> None:
    rules = [copy.deepcopy(THEIR_RULE), *route(cluster)["spec"]["rules"]]
    their_edit = {"apiVersion": ROUTE[0], "kind": "HTTPRoute", "metadata": {"name": ROUTE[2]}}
    cluster.apply({**their_edit, "spec": {"rules": rules}}, field_manager="user", force=True)
    before = route(cluster)
    deploy_canary(kube, cluster)
    mark = cluster.mark()
    backend(kube).set_canary_weight(20)
    after = route(cluster)
    assert after["spec"]["rules"][0] == before["spec"]["rules"][0]  # theirs, untouched
    ours_before, ours_after = before["spec"]["rules"][1], after["spec"]["rules"][1]
    for ref in ours_before["backendRefs"]:
        ref.pop("weight")
    for ref in ours_after["backendRefs"]:
        ref.pop("weight")
    assert ours_after == ours_before  # matches, sessionPersistence, names, ports: as they were
    assert {k: v for k, v in after["spec"].items() if k != "rules"} == {
        k: v for k, v in before["spec"].items() if k != "rules"
    }
    writes = [r for r in cluster.requests_since(mark) if r.method != "GET"]
    assert [r.method for r in writes] == ["PATCH"]  # never PUT, never a replaced spec
    (patch,) = writes
    assert patch.content_type == "application/json-patch+json"
    tests = {op["path"]: op["value"] for op in patch.body if op["op"] == "test"}
    assert tests["/metadata/resourceVersion"]  # pinned (a stale one: the next test)
    assert patch.status == 200
    assert tests["/spec/rules/1/name"] == "ai-service"
    assert tests["/spec/rules/1/backendRefs/0/name"] == "ai-service-stable"
    assert tests["/spec/rules/1/backendRefs/1/name"] == "ai-service-canary"
    changed = sorted(op["path"] for op in patch.body if op["op"] != "test")
    assert [p for p in changed if p.startswith("/spec")] == [
        "/spec/rules/1/backendRefs/0/weight",
        "/spec/rules/1/backendRefs/1/weight",
    ]
    assert all(p.startswith("/metadata/annotations") for p in changed if not p.startswith("/spec"))


def test_a_route_changed_in_between_is_read_again_and_the_patch_retried(
    cluster: KubeCluster, kube: Kube
) -> None:
    deploy_canary(kube, cluster)
    # Another writer edits the route between our read and our write, twice: the pinned
    # resourceVersion is stale, the API server answers 422 (a failed `test`), we read again.
    edits = {"n": 0}
    real_patch = kube.patch

    def someone_edits_then_patch(path: str, body: Any, **kwargs: Any) -> dict[str, Any]:
        if path == ROUTE_PATH and edits["n"] < 2:
            edits["n"] += 1
            label = {"name": "ai-service", "labels": {"edited": str(edits["n"])}}
            cluster.apply(
                {"apiVersion": ROUTE[0], "kind": "HTTPRoute", "metadata": label},
                field_manager="someone-else",
            )
        return real_patch(path, body, **kwargs)

    kube.patch = someone_edits_then_patch  # type: ignore[method-assign]  # the race, made certain
    mark = cluster.mark()
    backend(kube).set_canary_weight(20)
    patches = [r.status for r in cluster.requests_since(mark) if r.method == "PATCH"]
    assert patches[:2] in ([409, 409], [422, 422]), patches
    assert patches[2] == 200
    assert weights(cluster)["ai-service-canary"] == 200_000


def test_the_canary_gets_no_weight_until_its_service_has_a_ready_endpoint(
    cluster: KubeCluster, kube: Kube
) -> None:
    cluster.controller.never_ready("ai-service-canary", reason="ImagePullBackOff")
    deploy_canary(kube, cluster)
    with pytest.raises(ToolkitError) as caught:
        backend(kube).set_canary_weight(5)
    assert caught.value.exit_code == EXIT_FAILED
    assert "ImagePullBackOff" in caught.value.message
    assert "pod ai-service-canary-" in caught.value.message
    assert weights(cluster)["ai-service-canary"] == 0


def test_a_route_its_gateway_does_not_accept_is_an_error_and_traffic_goes_back(
    cluster: KubeCluster, kube: Kube
) -> None:
    deploy_canary(kube, cluster)
    cluster.controller.not_accepted("ai-service")
    with pytest.raises(ToolkitError) as caught:
        backend(kube).set_canary_weight(20)
    assert "not accepted by its gateway" in caught.value.message
    assert "Accepted=False" in caught.value.message
    assert weights(cluster)["ai-service-canary"] == 0


def test_every_write_is_confirmed_by_the_routes_status_for_its_generation(
    cluster: KubeCluster, kube: Kube
) -> None:
    deploy_canary(kube, cluster)
    mark = cluster.mark()
    backend(kube).set_canary_weight(50)
    after = route(cluster)
    calls = cluster.requests_since(mark)
    last_patch = max(i for i, r in enumerate(calls) if r.method == "PATCH")
    assert any(r.method == "GET" and r.path == ROUTE_PATH for r in calls[last_patch + 1 :])
    generation = after["metadata"]["generation"]
    for parent in after["status"]["parents"]:
        conditions = {c["type"]: c for c in parent["conditions"]}
        assert conditions["Accepted"]["observedGeneration"] == generation


def test_rollback_moves_traffic_first_without_reading_the_canary(
    cluster: KubeCluster, kube: Kube
) -> None:
    deploy_canary(kube, cluster)
    backend(kube).set_canary_weight(20)
    cluster.controller.delete_pods("ai-service-canary")
    mark = cluster.mark()
    moved, state = backend(kube).rollback()
    assert moved and state.canary_weight == 0
    calls = [(r.method, r.path) for r in cluster.requests_since(mark)]
    assert calls[:2] == [("GET", ROUTE_PATH), ("PATCH", ROUTE_PATH)]
    assert weights(cluster) == {"ai-service-stable": TOTAL, "ai-service-canary": 0}
    canary = cluster.get("apps/v1", "Deployment", "ai-service-canary")
    assert canary is not None and canary["spec"]["replicas"] == 0
    assert backend(kube).rollback()[0] is False  # nothing left to roll back


def test_rollback_rides_out_a_503_spell(cluster: KubeCluster, kube: Kube) -> None:
    deploy_canary(kube, cluster)
    backend(kube).set_canary_weight(20)
    cluster.fail(status=503, seconds=1.5)
    started = time.monotonic()
    moved, _ = backend(kube).rollback()
    assert moved and 1.4 < time.monotonic() - started < 5
    assert weights(cluster)["ai-service-canary"] == 0


def test_rollback_against_an_unreachable_cluster_says_the_traffic_state_is_unknown(
    cluster: KubeCluster,
) -> None:
    kube = connect(ClusterOptions(kubeconfig=cluster.kubeconfig, api_timeout=1, wait_timeout=1))
    cluster.stop_server()
    started = time.monotonic()
    with pytest.raises(ToolkitError) as caught:
        backend(kube).rollback()
    assert time.monotonic() - started < 3  # bounded: never hangs
    assert caught.value.exit_code == EXIT_TRAFFIC_UNKNOWN
    assert caught.value.message.startswith("traffic state unknown")


@pytest.mark.parametrize(
    ("names", "namespace", "expected"),
    [
        ({"route": "nope"}, None, "HTTPRoute nope is not in namespace ai-staging"),
        ({}, "ai-prod", "HTTPRoute ai-service is not in namespace ai-prod"),
        ({"rule": "other"}, None, "has no rule named 'other' (rules: ai-service)"),
    ],
)
def test_a_missing_route_or_rule_is_one_sentence(
    cluster: KubeCluster, names: dict[str, str], namespace: str | None, expected: str
) -> None:
    kube = connect(
        ClusterOptions(kubeconfig=cluster.kubeconfig, namespace=namespace, api_timeout=2)
    )
    with pytest.raises(ToolkitError) as caught:
        backend(kube, **names).state()
    assert expected in caught.value.message
    assert caught.value.exit_code == EXIT_USAGE


def test_rbac_forbidden_is_one_sentence_naming_the_role(cluster: KubeCluster, kube: Kube) -> None:
    deploy_canary(kube, cluster)
    cluster.forbid(verb="patch", resource="httproutes")
    with pytest.raises(ToolkitError) as caught:
        backend(kube).set_canary_weight(5)
    assert caught.value.message.startswith("forbidden: ")
    assert "ai-rollout-deployer" in caught.value.message
    assert caught.value.exit_code == EXIT_USAGE
    assert weights(cluster)["ai-service-canary"] == 0


def test_dry_run_prints_the_exact_patch_and_sends_no_write(cluster: KubeCluster) -> None:
    echo = io.StringIO()
    options = ClusterOptions(kubeconfig=cluster.kubeconfig, dry_run=True, api_timeout=2)
    kube = connect(options, echo=echo)
    deploy_canary(connect(ClusterOptions(kubeconfig=cluster.kubeconfig)), cluster)
    mark = cluster.mark()
    backend(kube).set_canary_weight(5)
    assert [r.method for r in cluster.requests_since(mark) if r.method != "GET"] == []
    head, content_type, body = echo.getvalue().splitlines()[:3]
    assert head == f"dry-run: PATCH {ROUTE_PATH}?fieldManager=ai-rollout-toolkit"
    assert content_type.strip() == "Content-Type: application/json-patch+json"
    ops = json.loads(body)
    assert {"op": "add", "path": "/spec/rules/0/backendRefs/1/weight", "value": 50_000} in ops
    assert weights(cluster)["ai-service-canary"] == 0


def test_reapplying_the_overlay_during_a_canary_does_not_reset_the_weights(
    cluster: KubeCluster, kube: Kube
) -> None:
    manifest = route(cluster)
    applied = {
        "apiVersion": manifest["apiVersion"],
        "kind": "HTTPRoute",
        "metadata": {"name": "ai-service", "labels": manifest["metadata"]["labels"]},
        "spec": copy.deepcopy(manifest["spec"]),
    }
    cluster.apply(applied, field_manager="kubectl")  # the overlay, server-side
    deploy_canary(kube, cluster)
    backend(kube).set_canary_weight(20)
    with pytest.raises(Exception, match=r"(?i)conflict"):
        cluster.apply(applied, field_manager="kubectl")  # `kubectl apply --server-side -k` again
    assert weights(cluster)["ai-service-canary"] == 200_000
    assert backend(kube).state().weights[Track.CANARY] == 20


def test_a_promotion_interrupted_while_stable_rolls_out_finishes_on_a_rerun(
    cluster: KubeCluster, kube: Kube
) -> None:
    sha = deploy_canary(kube, cluster)
    backend(kube).set_canary_weight(50)
    cluster.controller.never_ready("ai-service", reason="CrashLoopBackOff")
    with pytest.raises(ToolkitError) as caught:
        backend(kube).promote_canary()
    assert "CrashLoopBackOff" in caught.value.message
    # The canary, judged good, serves everyone meanwhile; stable never got traffic back.
    assert weights(cluster) == {"ai-service-stable": 0, "ai-service-canary": TOTAL}
    cluster.controller.ready("ai-service")
    state = backend(kube).promote_canary()
    assert weights(cluster) == {"ai-service-stable": TOTAL, "ai-service-canary": 0}
    assert state.versions[Track.STABLE] == sha and Track.CANARY not in state.versions


def test_a_rollback_its_gateway_does_not_confirm_is_unknown_not_done(
    cluster: KubeCluster,
) -> None:
    kube = connect(ClusterOptions(kubeconfig=cluster.kubeconfig, api_timeout=1, wait_timeout=3))
    deploy_canary(kube, cluster)
    backend(kube).set_canary_weight(20)
    cluster.controller.not_accepted("ai-service")
    started = time.monotonic()
    with pytest.raises(ToolkitError) as caught:
        backend(kube).rollback()
    assert time.monotonic() - started < 2.5  # the API timeout bounds the wait for the gateway
    assert caught.value.exit_code == EXIT_TRAFFIC_UNKNOWN
    assert "not accepted by its gateway" in caught.value.message
    assert weights(cluster)["ai-service-canary"] == 0  # written; its effect unconfirmed
