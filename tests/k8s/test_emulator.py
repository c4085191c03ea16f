"""The stricter Kubernetes emulator behaves as the API server documents, through the real client.

Each test names the documented behaviour it holds the emulator to (kubernetes.io API concepts,
server-side apply, label selectors, the API conventions), because the cluster backends' tests are
only as good as the emulator's answers where a backend can go wrong.
"""

from __future__ import annotations

import copy
import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes import client, watch

from tests.k8s.tools import K8S, kubectl, render, with_component
from tests.support.kube import KubeCluster
from tests.support.kube.kinds import KINDS
from tests.support.polling import poll_until

NS = "prod"
GW = ("gateway.networking.k8s.io", "v1", NS, "httproutes")
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"


def deployment(
    name: str = "web", image: str = "registry.example/web:1", replicas: int = 2
) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "containers": [
                        {"name": "app", "image": image, "env": [{"name": "A", "value": "1"}]},
                        {"name": "sidecar", "image": "registry.example/proxy:1"},
                    ]
                },
            },
        },
    }


def route(
    weights: tuple[int, int] = (100, 0), backends: tuple[str, str] = ("web", "web-canary")
) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "web"},
        "spec": {
            "parentRefs": [{"name": "gateway", "namespace": "gateway-system"}],
            "rules": [
                {
                    "name": "web",
                    "backendRefs": [
                        {"name": backends[0], "port": 8000, "weight": weights[0]},
                        {"name": backends[1], "port": 8000, "weight": weights[1]},
                    ],
                }
            ],
        },
    }


def service(name: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": 8000}]},
    }


def config_map(name: str = "settings", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": {"a": "1"},
    }


@pytest.fixture
def cluster() -> Iterator[KubeCluster]:
    """The emulator alone: no controller writes, so resourceVersions move only by the test."""
    with KubeCluster(namespace=NS, controller=False) as running:
        yield running


@pytest.fixture
def live() -> Iterator[KubeCluster]:
    """The emulator with its controller."""
    with KubeCluster(namespace=NS) as running:
        yield running


@pytest.fixture
def api(cluster: KubeCluster) -> client.ApiClient:
    return cluster.api_client()


def reply(exc: client.ApiException) -> dict[str, Any]:
    """The Status an API error carried."""
    status: dict[str, Any] = json.loads(exc.body or "{}")
    return status


def error(call: Any, *args: Any, **kwargs: Any) -> client.ApiException:
    with pytest.raises(client.ApiException) as caught:
        call(*args, **kwargs)
    return caught.value


# -- resourceVersion and optimistic concurrency ----------------------------------------------


def test_a_stale_resource_version_is_a_409_conflict(
    cluster: KubeCluster, api: client.ApiClient
) -> None:
    """Every write moves metadata.resourceVersion; an update carrying an older one is refused
    with 409 Conflict, for PUT and for a merge patch that sets it.
    https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions and
    https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md#concurrency-control-and-consistency
    """
    core = client.CoreV1Api(api)
    cluster.create(config_map())
    first = core.read_namespaced_config_map("settings", NS)
    second = core.patch_namespaced_config_map(
        "settings", NS, {"data": {"a": "2"}}, _content_type=MERGE_PATCH
    )
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)

    stale = error(core.replace_namespaced_config_map, "settings", NS, first)
    assert stale.status == 409
    assert reply(stale)["reason"] == "Conflict"
    stale_patch = {
        "metadata": {"resourceVersion": first.metadata.resource_version},
        "data": {"a": "3"},
    }
    assert (
        error(
            core.patch_namespaced_config_map, "settings", NS, stale_patch, _content_type=MERGE_PATCH
        ).status
        == 409
    )
    assert core.read_namespaced_config_map("settings", NS).data == {"a": "2"}

    second.data = {"a": "4"}
    assert core.replace_namespaced_config_map("settings", NS, second).data == {"a": "4"}


def test_put_replaces_the_whole_object(cluster: KubeCluster, api: client.ApiClient) -> None:
    """PUT (update) replaces the stored object with the one sent: fields not sent are gone; a
    custom resource needs metadata.resourceVersion for it (422 without).
    https://kubernetes.io/docs/reference/using-api/api-concepts/#patch-and-apply ("update": PUT
    replaces the existing resource) and #resource-versions
    """
    core = client.CoreV1Api(api)
    cluster.create({**config_map(), "data": {"a": "1", "b": "2"}})
    current = core.read_namespaced_config_map("settings", NS)
    current.data = {"b": "3"}
    assert core.replace_namespaced_config_map("settings", NS, current).data == {"b": "3"}

    cluster.create(route())
    custom = client.CustomObjectsApi(api)
    body = route((90, 10))
    refused = error(custom.replace_namespaced_custom_object, *GW, "web", body)
    assert refused.status == 422
    body["metadata"]["resourceVersion"] = cluster.get(
        "gateway.networking.k8s.io/v1", "HTTPRoute", "web"
    )["metadata"]["resourceVersion"]
    replaced = custom.replace_namespaced_custom_object(*GW, "web", body)
    assert [b["weight"] for b in replaced["spec"]["rules"][0]["backendRefs"]] == [90, 10]


def test_a_failed_json_patch_test_is_422_and_changes_nothing(
    cluster: KubeCluster, api: client.ApiClient
) -> None:
    """A JSON Patch is applied whole or not at all; a `test` operation that does not hold makes
    the request fail with 422 Unprocessable Entity, not a server error, and a `test` on
    /metadata/resourceVersion is how a client pins the version it read.
    https://kubernetes.io/docs/reference/using-api/api-concepts/#patch-and-apply (JSON Patch,
    RFC 6902 section 5: "the entire patch document SHALL NOT be deemed successful") and
    https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md#http-status-codes
    (422)
    """
    cluster.create(route())
    custom = client.CustomObjectsApi(api)
    rv = cluster.get("gateway.networking.k8s.io/v1", "HTTPRoute", "web")["metadata"][
        "resourceVersion"
    ]
    move = [
        {"op": "test", "path": "/spec/rules/0/backendRefs/1/name", "value": "someone-else"},
        {"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": 50},
    ]
    failed = error(
        custom.patch_namespaced_custom_object, *GW, "web", move, _content_type=JSON_PATCH
    )
    assert failed.status == 422
    assert reply(failed)["reason"] == "Invalid"
    assert (
        cluster.get("gateway.networking.k8s.io/v1", "HTTPRoute", "web")["metadata"][
            "resourceVersion"
        ]
        == rv
    )

    pinned = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": 50},
    ]
    custom.patch_namespaced_custom_object(*GW, "web", pinned, _content_type=JSON_PATCH)
    assert (
        error(
            custom.patch_namespaced_custom_object, *GW, "web", pinned, _content_type=JSON_PATCH
        ).status
        == 422
    )


# -- patch types -----------------------------------------------------------------------------


def test_strategic_merge_merges_lists_by_their_merge_key(
    cluster: KubeCluster, api: client.ApiClient
) -> None:
    """A strategic merge patch merges `containers` and `env` by `name` (patchMergeKey): patching
    one container's image keeps the other container; `$patch: delete` removes one item; a JSON
    merge patch replaces the list.
    https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/
    ("Notes on the strategic merge patch", patchStrategy and patchMergeKey)
    """
    apps = client.AppsV1Api(api)
    cluster.create(deployment())
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "registry.example/web:2",
                            "env": [{"name": "B", "value": "2"}],
                        },
                    ]
                }
            }
        }
    }
    patched = apps.patch_namespaced_deployment("web", NS, patch, _content_type=STRATEGIC)
    containers = {c.name: c for c in patched.spec.template.spec.containers}
    assert containers["app"].image == "registry.example/web:2"
    assert containers["sidecar"].image == "registry.example/proxy:1"
    assert {e.name: e.value for e in containers["app"].env} == {"A": "1", "B": "2"}

    gone = {
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}
    }
    patched = apps.patch_namespaced_deployment("web", NS, gone, _content_type=STRATEGIC)
    assert [c.name for c in patched.spec.template.spec.containers] == ["app"]

    merge = {
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "other", "image": "registry.example/o:1"}]}
            }
        }
    }
    patched = apps.patch_namespaced_deployment("web", NS, merge, _content_type=MERGE_PATCH)
    assert [c.name for c in patched.spec.template.spec.containers] == ["other"]


def test_strategic_merge_on_a_custom_resource_is_415(
    cluster: KubeCluster, api: client.ApiClient
) -> None:
    """Custom resources (HTTPRoute is one) take JSON Patch, merge patch and apply, not strategic
    merge: 415 Unsupported Media Type.
    https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/
    ("strategic merge patch is not supported for custom resources") and
    https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#advanced-topics
    """
    cluster.create(route())
    custom = client.CustomObjectsApi(api)
    body = {
        "spec": {
            "rules": [{"name": "web", "backendRefs": [{"name": "web", "port": 8000, "weight": 1}]}]
        }
    }
    refused = error(
        custom.patch_namespaced_custom_object, *GW, "web", body, _content_type=STRATEGIC
    )
    assert refused.status == 415
    assert reply(refused)["reason"] == "UnsupportedMediaType"
    weights = cluster.get("gateway.networking.k8s.io/v1", "HTTPRoute", "web")["spec"]["rules"][0][
        "backendRefs"
    ]
    assert [b["weight"] for b in weights] == [100, 0]


def test_invalid_weights_and_replicas_are_422_and_change_nothing(
    cluster: KubeCluster, api: client.ApiClient
) -> None:
    """The API server validates a write against the schema before storing it: an HTTPRoute
    backendRef weight outside 0..1,000,000 (the Gateway API CRD's bounds) or negative replicas
    is 422 Invalid naming the field, and neither the object nor its managedFields change.
    https://kubernetes.io/docs/reference/using-api/api-concepts/#patch-and-apply (validation)
    and https://gateway-api.sigs.k8s.io/reference/spec/#httpbackendref (weight: 0 to 1,000,000)
    """
    cluster.create(route())
    before = cluster.get("gateway.networking.k8s.io/v1", "HTTPRoute", "web")
    custom = client.CustomObjectsApi(api)
    too_heavy = [
        {"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 1_000_001}
    ]
    refused = error(
        custom.patch_namespaced_custom_object,
        *GW,
        "web",
        too_heavy,
        field_manager="x",
        _content_type=JSON_PATCH,
    )
    assert refused.status == 422
    assert "spec.rules[0].backendRefs[1].weight" in reply(refused)["message"]
    assert cluster.get("gateway.networking.k8s.io/v1", "HTTPRoute", "web") == before

    cluster.create(deployment())
    apps = client.AppsV1Api(api)
    negative = {"spec": {"replicas": -1}}
    assert (
        error(
            apps.patch_namespaced_deployment, "web", NS, negative, _content_type=MERGE_PATCH
        ).status
        == 422
    )
    assert cluster.get("apps/v1", "Deployment", "web")["spec"]["replicas"] == 2


def test_lists_come_in_pages_and_collections_delete_by_selector(
    cluster: KubeCluster, api: client.ApiClient
) -> None:
    """`limit` returns a page with a `continue` token for the rest; DELETE on a collection
    with a label selector deletes what it selects (deletecollection).
    https://kubernetes.io/docs/reference/using-api/api-concepts/#retrieving-large-results-sets-in-chunks
    and https://kubernetes.io/docs/reference/using-api/api-concepts/#collections
    """
    core = client.CoreV1Api(api)
    for n in range(5):
        cluster.create(config_map(f"cm-{n}", app="web" if n % 2 else "db"))
    first = core.list_namespaced_config_map(NS, limit=2)
    assert [c.metadata.name for c in first.items] == ["cm-0", "cm-1"]
    assert first.metadata.remaining_item_count == 3
    rest = core.list_namespaced_config_map(NS, limit=3, _continue=first.metadata._continue)
    assert [c.metadata.name for c in rest.items] == ["cm-2", "cm-3", "cm-4"]
    assert rest.metadata._continue is None

    core.delete_collection_namespaced_config_map(NS, label_selector="app=web")
    assert [c.metadata.name for c in core.list_namespaced_config_map(NS).items] == [
        "cm-0",
        "cm-2",
        "cm-4",
    ]


# -- selectors, dry-run, subresources, watch ---------------------------------------------------


def test_label_and_field_selectors_filter_lists(
    cluster: KubeCluster, api: client.ApiClient
) -> None:
    """`labelSelector` takes equality (=, ==, !=) and set-based (in, notin, exists, !exists)
    requirements joined by commas (AND); `fieldSelector` takes metadata.name; a malformed
    selector is 400.
    https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors and
    #list-and-watch-filtering; https://kubernetes.io/docs/concepts/overview/working-with-objects/field-selectors/
    """
    core = client.CoreV1Api(api)
    cluster.create(config_map("a", app="web", track="stable"))
    cluster.create(config_map("b", app="web", track="canary"))
    cluster.create(config_map("c", app="db"))

    def names(**kwargs: str) -> list[str]:
        return [cm.metadata.name for cm in core.list_namespaced_config_map(NS, **kwargs).items]

    assert names(label_selector="app=web") == ["a", "b"]
    assert names(label_selector="app==web,track!=canary") == ["a"]
    assert names(label_selector="track in (canary, blue)") == ["b"]
    assert names(label_selector="app,track notin (stable)") == ["b", "c"]
    assert names(label_selector="!track") == ["c"]
    assert names(field_selector="metadata.name=c") == ["c"]
    assert error(core.list_namespaced_config_map, NS, label_selector="app in web").status == 400
    assert error(core.list_namespaced_config_map, NS, field_selector="data.a=1").status == 400


def test_dry_run_checks_everything_and_stores_nothing(
    cluster: KubeCluster, api: client.ApiClient
) -> None:
    """`dryRun=All` runs a write through every stage (conflicts and 422 included) and persists
    nothing; any other value is 400.
    https://kubernetes.io/docs/reference/using-api/api-concepts/#dry-run
    """
    core = client.CoreV1Api(api)
    created = core.create_namespaced_config_map(
        NS, client.V1ConfigMap(metadata={"name": "new"}), dry_run="All"
    )
    assert created.metadata.name == "new"
    assert cluster.get("v1", "ConfigMap", "new") is None

    cluster.create(config_map())
    before = cluster.get("v1", "ConfigMap", "settings")
    answer = core.patch_namespaced_config_map(
        "settings", NS, {"data": {"a": "2"}}, dry_run="All", _content_type=MERGE_PATCH
    )
    assert answer.data == {"a": "2"}
    core.delete_namespaced_config_map("settings", NS, dry_run="All")
    assert cluster.get("v1", "ConfigMap", "settings") == before

    stale = {"metadata": {"resourceVersion": "1"}, "data": {"a": "3"}}
    assert (
        error(
            core.patch_namespaced_config_map,
            "settings",
            NS,
            stale,
            dry_run="All",
            _content_type=MERGE_PATCH,
        ).status
        == 409
    )
    assert error(core.delete_namespaced_config_map, "settings", NS, dry_run="Some").status == 400


def test_status_is_written_only_through_its_subresource(
    cluster: KubeCluster, api: client.ApiClient
) -> None:
    """With the status subresource, a write to the main resource ignores `status` and a write to
    /status ignores everything but `status`; metadata.generation moves on spec changes only.
    https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#status-subresource
    and https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md#spec-and-status
    """
    apps = client.AppsV1Api(api)
    cluster.create(deployment())
    sneaky = {"spec": {"replicas": 3}, "status": {"readyReplicas": 9}}
    patched = apps.patch_namespaced_deployment("web", NS, sneaky, _content_type=MERGE_PATCH)
    assert patched.spec.replicas == 3
    assert patched.status is None or patched.status.ready_replicas is None
    assert patched.metadata.generation == 2

    status = {"spec": {"replicas": 7}, "status": {"readyReplicas": 3}}
    patched = apps.patch_namespaced_deployment_status("web", NS, status, _content_type=MERGE_PATCH)
    assert (patched.spec.replicas, patched.status.ready_replicas, patched.metadata.generation) == (
        3,
        3,
        2,
    )

    labels = {"metadata": {"labels": {"app": "web", "extra": "yes"}}}
    assert (
        apps.patch_namespaced_deployment(
            "web", NS, labels, _content_type=MERGE_PATCH
        ).metadata.generation
        == 2
    )

    scale = apps.patch_namespaced_deployment_scale(
        "web", NS, {"spec": {"replicas": 5}}, _content_type=MERGE_PATCH
    )
    assert scale.spec.replicas == 5
    assert cluster.get("apps/v1", "Deployment", "web")["spec"]["replicas"] == 5


def test_a_watch_from_a_resource_version_sees_later_changes_only(
    cluster: KubeCluster, api: client.ApiClient
) -> None:
    """A watch started at a resourceVersion streams the changes after it, filtered by the label
    selector (an object that stops matching is DELETED for that watch), and ends at
    timeoutSeconds.
    https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes
    and https://kubernetes.io/docs/reference/using-api/api-concepts/#semantics-for-watch
    """
    core = client.CoreV1Api(api)
    cluster.create(config_map("before", app="web"))
    start = core.list_namespaced_config_map(NS).metadata.resource_version
    cluster.create(config_map("other", app="db"))
    cluster.create(config_map("after", app="web"))
    core.patch_namespaced_config_map(
        "after", NS, {"metadata": {"labels": {"app": "moved"}}}, _content_type=MERGE_PATCH
    )
    began = time.monotonic()
    events = [
        (event["type"], event["object"].metadata.name)
        for event in watch.Watch().stream(
            core.list_namespaced_config_map,
            NS,
            label_selector="app=web",
            resource_version=start,
            timeout_seconds=1,
        )
    ]
    assert events == [("ADDED", "after"), ("DELETED", "after")]
    assert time.monotonic() - began < 5


def test_a_watch_from_a_compacted_resource_version_is_410_expired(
    cluster: KubeCluster, api: client.ApiClient
) -> None:
    """Once history is compacted, a watch from an older resourceVersion gets an ERROR event
    with 410 Gone (reason Expired): the client must list again and watch from the list's version.
    https://kubernetes.io/docs/reference/using-api/api-concepts/#410-gone-responses
    """
    core = client.CoreV1Api(api)
    cluster.create(config_map("before"))
    old = core.list_namespaced_config_map(NS).metadata.resource_version
    cluster.create(config_map("after"))
    cluster.compact()
    with pytest.raises(client.ApiException) as expired:
        list(
            watch.Watch().stream(
                core.list_namespaced_config_map, NS, resource_version=old, timeout_seconds=1
            )
        )
    assert expired.value.status == 410
    fresh = core.list_namespaced_config_map(NS)
    assert [cm.metadata.name for cm in fresh.items] == ["after", "before"]
    stream = watch.Watch().stream(
        core.list_namespaced_config_map,
        NS,
        resource_version=fresh.metadata.resource_version,
        timeout_seconds=1,
    )
    assert list(stream) == []


# -- server-side apply -----------------------------------------------------------------------


def apply(
    api: client.ApiClient, body: dict[str, Any], manager: str, force: bool = False
) -> dict[str, Any]:
    custom = client.CustomObjectsApi(api)
    return custom.patch_namespaced_custom_object(  # type: ignore[no-any-return]
        *GW, body["metadata"]["name"], body, field_manager=manager, force=force, _content_type=APPLY
    )


def weights(obj: dict[str, Any]) -> list[int]:
    return [b["weight"] for b in obj["spec"]["rules"][0]["backendRefs"]]


def test_apply_conflicts_on_fields_another_manager_owns(
    cluster: KubeCluster, api: client.ApiClient
) -> None:
    """Server-side apply records field ownership in managedFields; an apply that changes a field
    another manager set is a 409 Conflict naming that manager and field, unless forced; HTTPRoute
    `spec.rules` is an atomic list (the Gateway API CRD declares no list-map), so weights changed
    by a rollout's patch are owned by the rollout's manager and a re-apply of the overlay does not
    reset them without `force`.
    https://kubernetes.io/docs/reference/using-api/server-side-apply/#conflicts and
    #field-management, #merge-strategy
    """
    created = apply(api, route(), "kustomize")
    assert [(m["manager"], m["operation"]) for m in created["metadata"]["managedFields"]] == [
        ("kustomize", "Apply")
    ]
    moved = [
        {
            "op": "replace",
            "path": "/spec/rules/0/backendRefs",
            "value": route((80, 20))["spec"]["rules"][0]["backendRefs"],
        }
    ]
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        *GW, "web", moved, field_manager="ai-rollout", _content_type=JSON_PATCH
    )

    refused = error(apply, api, route(), "kustomize")
    assert refused.status == 409
    cause = reply(refused)["details"]["causes"][0]
    assert cause == {
        "reason": "FieldManagerConflict",
        "message": 'conflict with "ai-rollout" using gateway.networking.k8s.io/v1',
        "field": ".spec.rules",
    }
    assert weights(cluster.get("gateway.networking.k8s.io/v1", "HTTPRoute", "web")) == [80, 20]

    same = apply(api, route((80, 20)), "kustomize")  # the live values: shared, no conflict
    assert weights(same) == [80, 20]
    forced = apply(api, route(), "kustomize", force=True)
    assert weights(forced) == [100, 0]
    assert {m["manager"] for m in forced["metadata"]["managedFields"]} == {"kustomize"}


def test_apply_removes_what_its_manager_stops_setting(
    cluster: KubeCluster, api: client.ApiClient
) -> None:
    """A field the applier set before and leaves out now is removed, unless another manager also
    owns it; list items with a merge key (containers by name) are owned item by item.
    https://kubernetes.io/docs/reference/using-api/server-side-apply/#field-management and
    #merge-strategy
    """
    apps = client.AppsV1Api(api)
    first = deployment()
    first["metadata"]["labels"]["tier"] = "front"
    apps.patch_namespaced_deployment(
        "web", NS, first, field_manager="kustomize", _content_type=APPLY
    )
    other = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"team": "ai"}},
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "app", "image": "registry.example/web:9"}]}
            }
        },
    }
    refused = error(
        apps.patch_namespaced_deployment,
        "web",
        NS,
        other,
        field_manager="ai-rollout",
        _content_type=APPLY,
    )
    assert refused.status == 409
    assert '[name="app"].image' in reply(refused)["message"]
    apps.patch_namespaced_deployment(
        "web", NS, other, field_manager="ai-rollout", force=True, _content_type=APPLY
    )

    second = deployment()
    second["spec"]["template"]["spec"]["containers"] = second["spec"]["template"]["spec"][
        "containers"
    ][:1]
    second["spec"]["template"]["spec"]["containers"][0].pop("image")
    result = apps.patch_namespaced_deployment(
        "web", NS, second, field_manager="kustomize", _content_type=APPLY
    )
    assert result.metadata.labels == {"app": "web", "team": "ai"}
    assert [(c.name, c.image) for c in result.spec.template.spec.containers] == [
        ("app", "registry.example/web:9")
    ]


def test_kubectl_server_side_apply_and_rollout_undo_work_against_it(live: KubeCluster) -> None:
    """kubectl itself (discovery, apply --server-side, rollout status/undo) runs against the
    emulator, so subprocess tests and DEPLOYING.md commands see what a cluster says.
    https://kubernetes.io/docs/reference/using-api/server-side-apply/#conflicts (kubectl's message)
    """
    env = live.env()

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [kubectl(), *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    manifests = json.dumps({"apiVersion": "v1", "kind": "List", "items": [route(), deployment()]})
    applied = run(
        "apply",
        "--server-side",
        "--validate=false",
        "--field-manager=kustomize",
        "-f",
        "-",
        stdin=manifests,
    )
    assert applied.returncode == 0, applied.stderr
    assert run("rollout", "status", "deployment/web", "--timeout=10s").returncode == 0
    assert run("set", "image", "deployment/web", "app=registry.example/web:2").returncode == 0
    assert run("rollout", "status", "deployment/web", "--timeout=10s").returncode == 0
    undone = run("rollout", "undo", "deployment/web")
    assert undone.returncode == 0, undone.stderr
    image = poll_until(
        lambda: (
            live.get("apps/v1", "Deployment", "web")["spec"]["template"]["spec"]["containers"][0][
                "image"
            ]
            == "registry.example/web:1"
        ),
        timeout=5,
        message="undo restores the first image",
    )
    assert image
    moved = json.dumps(
        [{"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": 50}]
    )
    assert (
        run(
            "patch", "httproute", "web", "--type=json", "--field-manager=ai-rollout", "-p", moved
        ).returncode
        == 0
    )
    conflict = run(
        "apply",
        "--server-side",
        "--validate=false",
        "--field-manager=kustomize",
        "-f",
        "-",
        stdin=json.dumps(route()),
    )
    assert conflict.returncode != 0
    assert 'conflict with "ai-rollout"' in conflict.stderr


# -- faults, the request log, RBAC ---------------------------------------------------------


def test_faults_answer_for_a_count_or_a_time_and_the_log_counts_calls(
    cluster: KubeCluster, api: client.ApiClient
) -> None:
    """Injected faults answer as an overloaded or failing API server does (503, 429 with
    Retry-After, 500) for the next N matching requests or for T seconds; a stopped server refuses
    connections; every request is logged with method, path, query, content type and body.
    https://kubernetes.io/docs/reference/using-api/api-concepts/#retry-after (429, Retry-After)
    """
    core = client.CoreV1Api(api)
    cluster.create(config_map())
    cluster.fail(status=503, count=2, path_contains="/configmaps/settings")
    assert [error(core.read_namespaced_config_map, "settings", NS).status for _ in range(2)] == [
        503,
        503,
    ]
    assert core.read_namespaced_config_map("settings", NS).data == {"a": "1"}

    cluster.fail(status=500, seconds=0.3)
    assert error(core.read_namespaced_config_map, "settings", NS).status == 500
    poll_until(
        lambda: core.read_namespaced_config_map("settings", NS),
        timeout=3,
        message="the 500 window ends",
    )

    cluster.fail(status=429, count=1)
    with pytest.raises(urllib.error.HTTPError) as busy:
        urllib.request.urlopen(  # noqa: S310  # the emulator's own http:// URL
            f"{cluster.url}/api/v1/namespaces/{NS}/configmaps/settings", timeout=5
        )
    assert (busy.value.code, busy.value.headers["Retry-After"]) == (429, "1")

    mark = cluster.mark()
    core.patch_namespaced_config_map(
        "settings", NS, {"data": {"a": "2"}}, field_manager="t", _content_type=MERGE_PATCH
    )
    (logged,) = cluster.requests_since(mark)
    assert (
        logged.method,
        logged.path,
        logged.query,
        logged.content_type,
        logged.body,
        logged.status,
    ) == (
        "PATCH",
        f"/api/v1/namespaces/{NS}/configmaps/settings",
        {"fieldManager": "t"},
        MERGE_PATCH,
        {"data": {"a": "2"}},
        200,
    )

    cluster.forbid("patch", "configmaps")
    forbidden = error(
        core.patch_namespaced_config_map, "settings", NS, {"data": {}}, _content_type=MERGE_PATCH
    )
    assert forbidden.status == 403
    assert 'cannot patch resource "configmaps"' in reply(forbidden)["message"]
    cluster.heal()

    cluster.stop_server()
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        core.read_namespaced_config_map("settings", NS, _request_timeout=2)
    cluster.start_server()
    assert core.read_namespaced_config_map("settings", NS).data == {"a": "2"}


# -- the controller --------------------------------------------------------------------------


def test_the_controller_rolls_deployments_out_and_fills_their_status(live: KubeCluster) -> None:
    """A Deployment gets a ReplicaSet per template (revision annotations), ready Pods and a status
    with observedGeneration, ready/updated/available counts and Available/Progressing; a Service
    gets an EndpointSlice of its pods' addresses, ready as the pods are.
    https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#deployment-status and
    https://kubernetes.io/docs/concepts/services-networking/endpoint-slices/
    """
    live.create(deployment())
    live.create(service("web", "web"))
    api = live.api_client()
    apps = client.AppsV1Api(api)

    def rolled_out() -> Any:
        status = apps.read_namespaced_deployment_status("web", NS).status
        return status.observed_generation == 1 and status.ready_replicas == 2 and status

    status = poll_until(rolled_out, timeout=2, message="the Deployment becomes ready")
    assert {c.type: (c.status, c.reason) for c in status.conditions} == {
        "Available": ("True", "MinimumReplicasAvailable"),
        "Progressing": ("True", "NewReplicaSetAvailable"),
    }
    pods = client.CoreV1Api(api).list_namespaced_pod(NS, label_selector="app=web").items
    assert len(pods) == 2 and all(p.status.container_statuses[0].ready for p in pods)
    slices = (
        client.DiscoveryV1Api(api)
        .list_namespaced_endpoint_slice(NS, label_selector="kubernetes.io/service-name=web")
        .items
    )
    assert sorted(e.addresses[0] for e in slices[0].endpoints) == sorted(
        p.status.pod_ip for p in pods
    )

    live.controller.never_ready("web", reason="ImagePullBackOff", image="registry.example/web:2")
    live.controller.progress_deadline = 0.3
    apps.patch_namespaced_deployment(
        "web",
        NS,
        [
            {
                "op": "replace",
                "path": "/spec/template/spec/containers/0/image",
                "value": "registry.example/web:2",
            }
        ],
        _content_type=JSON_PATCH,
    )

    def stuck() -> Any:
        dep = apps.read_namespaced_deployment("web", NS)
        progressing = {c.type: c for c in dep.status.conditions}["Progressing"]
        return progressing.reason == "ProgressDeadlineExceeded" and dep

    dep = poll_until(stuck, timeout=3, message="the bad image exceeds its progress deadline")
    assert dep.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    assert (dep.status.ready_replicas, dep.status.updated_replicas) == (
        2,
        2,
    )  # the old pods keep serving
    waiting = [
        p.status.container_statuses[0].state.waiting.reason
        for p in client.CoreV1Api(api).list_namespaced_pod(NS, label_selector="app=web").items
        if p.spec.containers[0].image == "registry.example/web:2"
    ]
    assert waiting == ["ImagePullBackOff", "ImagePullBackOff"]
    sets = apps.list_namespaced_replica_set(NS, label_selector="app=web").items
    assert sorted(s.metadata.annotations["deployment.kubernetes.io/revision"] for s in sets) == [
        "1",
        "2",
    ]
    assert live.controller.errors == []


def test_the_controller_reports_route_status_and_obeys_its_switches(live: KubeCluster) -> None:
    """An HTTPRoute gets status.parents[].conditions Accepted and ResolvedRefs, ResolvedRefs
    False (BackendNotFound) while a backendRef names a missing Service; the switches make a
    route not accepted and a Deployment's pods disappear.
    https://gateway-api.sigs.k8s.io/reference/spec/#routeconditiontype
    """
    live.create(deployment("web-canary"))
    live.create(service("web", "web"))
    live.create(route())
    custom = client.CustomObjectsApi(live.api_client())

    def conditions() -> dict[str, tuple[str, str]]:
        obj = custom.get_namespaced_custom_object(*GW, "web")
        parents = (obj.get("status") or {}).get("parents") or [{}]
        return {c["type"]: (c["status"], c["reason"]) for c in parents[0].get("conditions", [])}

    poll_until(
        lambda: conditions().get("ResolvedRefs") == ("False", "BackendNotFound"),
        timeout=2,
        message="a missing backend Service is reported",
    )
    live.create(service("web-canary", "web-canary"))
    poll_until(
        lambda: (
            conditions()
            == {"Accepted": ("True", "Accepted"), "ResolvedRefs": ("True", "ResolvedRefs")}
        ),
        timeout=2,
        message="the route resolves",
    )
    live.controller.not_accepted("web")
    poll_until(
        lambda: conditions()["Accepted"] == ("False", "NotAllowedByListeners"),
        timeout=2,
        message="the route is not accepted",
    )

    def canary_endpoints() -> int:
        slice_ = live.get("discovery.k8s.io/v1", "EndpointSlice", "web-canary-emu")
        return len(slice_["endpoints"]) if slice_ else -1

    poll_until(lambda: canary_endpoints() == 2, timeout=2, message="the canary has endpoints")
    live.controller.ready_delay = 0.5
    live.delete("apps/v1", "Deployment", "web-canary")
    live.create(deployment("web-canary"))

    def ready_endpoints() -> list[bool]:
        slice_ = live.get("discovery.k8s.io/v1", "EndpointSlice", "web-canary-emu")
        return [e["conditions"]["ready"] for e in slice_["endpoints"]] if slice_ else []

    assert poll_until(
        lambda: ready_endpoints() == [False, False], timeout=2, message="new pods, not ready yet"
    )
    poll_until(
        lambda: ready_endpoints() == [True, True], timeout=2, message="ready after the delay"
    )
    live.controller.delete_pods("web-canary")
    poll_until(lambda: canary_endpoints() == 0, timeout=2, message="the canary's pods are gone")
    assert live.objects("v1", "Pod") == []
    assert live.controller.errors == []


def test_the_controller_reacts_within_a_fifth_of_a_second(live: KubeCluster) -> None:
    """The e2e tests wait on status the controller writes: it must react quickly."""
    obj = copy.deepcopy(deployment())
    started = time.monotonic()
    live.create(obj)
    poll_until(
        lambda: (
            (live.get("apps/v1", "Deployment", "web").get("status") or {}).get("readyReplicas") == 2
        ),
        timeout=2,
        interval=0.01,
        message="ready",
    )
    assert time.monotonic() - started < 0.2


def test_clusters_start_and_stop_in_any_order() -> None:
    """Tests run several clusters at once and stop them in any order: nothing process-wide is
    patched, and a stopped cluster frees its port."""
    first = KubeCluster(namespace=NS, controller=False).__enter__()
    second = KubeCluster(namespace=NS, controller=False).__enter__()
    try:
        first.stop_server()
        first.start_server()
        assert urllib.request.urlopen(f"{second.url}/version", timeout=5).status == 200  # noqa: S310
    finally:
        first.__exit__(None, None, None)
    assert urllib.request.urlopen(f"{second.url}/version", timeout=5).status == 200  # noqa: S310
    second.__exit__(None, None, None)
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{first.url}/version", timeout=2)  # noqa: S310


@pytest.mark.parametrize("component", ["canary", "blue-green"])
def test_every_rendered_overlay_object_is_served_and_becomes_ready(
    component: str, tmp_path: Path
) -> None:
    """The staging overlay as kustomize renders it (every kind, the migration Job included) is
    created whole, and the controller brings its Deployments ready and its Job to Complete."""
    folder = (
        K8S / "overlays" / "staging"
        if component == "canary"
        else with_component(tmp_path, "staging", component)
    )
    objects = render(folder)
    with KubeCluster(namespace="ai-staging") as cluster:
        cluster.create_all(objects)
        cluster.controller.settle()

        def ready() -> bool:
            deployments = cluster.objects("apps/v1", "Deployment")
            return all(
                (d.get("status") or {}).get("readyReplicas", 0) == d["spec"]["replicas"]
                for d in deployments
            ) and all(
                any(c["type"] == "Complete" for c in (j.get("status") or {}).get("conditions", []))
                for j in cluster.objects("batch/v1", "Job")
            )

        poll_until(ready, timeout=5, message="the overlay's workloads are ready")
        assert {o["kind"] for o in objects} <= {k.kind for k in KINDS}
        assert cluster.controller.errors == []


def test_a_job_completes_unless_told_to_fail(live: KubeCluster) -> None:
    """Jobs report Complete (succeeded 1), or Failed with BackoffLimitExceeded when switched.
    https://kubernetes.io/docs/concepts/workloads/controllers/job/#job-termination-and-cleanup
    """
    template = {"spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "x:1"}]}}
    live.controller.fail_job("bad")
    for name in ("good", "bad"):
        live.create(
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": name},
                "spec": {"backoffLimit": 2, "template": template},
            }
        )

    def finished(name: str) -> tuple[str, str, int] | None:
        status = live.get("batch/v1", "Job", name).get("status") or {}
        conditions = status.get("conditions") or [{}]
        return (
            (conditions[0].get("type"), conditions[0].get("reason"), status.get("failed"))
            if conditions[0]
            else None
        )

    assert poll_until(lambda: finished("good"), timeout=2) == ("Complete", "", 0)
    assert poll_until(lambda: finished("bad"), timeout=2) == ("Failed", "BackoffLimitExceeded", 3)
