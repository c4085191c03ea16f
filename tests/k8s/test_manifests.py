"""k8s/: every overlay, with each rollout component, rendered by a pinned kustomize, validated
against the Kubernetes 1.30 and Gateway API schemas, and checked for what the rollout relies on:
probes, drain timing, hardened pods, labels and selectors, weights, the Role's verbs, and
staging and production differing only where k8s/README.md says."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from contract.registry.configmap import (
    MANIFEST,
    from_configmap_key,
    manifest,
    registry_files,
)
from contract.tracks import TRACKS
from tests.k8s.tools import K8S, KUBERNETES_VERSION, gateway_schemas, render, with_component
from tests.support.service import REPO

OVERLAYS = ("staging", "production")
COMPONENTS = ("canary", "blue-green")
PART_OF = "ai-rollout-template"
# Where staging and production may differ; k8s/README.md lists the same ("Staging and
# production"). A path is `Kind/name:field.path` with list indexes as numbers.
ALLOWED_DRIFT = (
    "*:metadata.namespace",
    "RoleBinding/ai-rollout-deployer:subjects.0.namespace",
    "RoleBinding/ai-service-registry-reader:subjects.0.namespace",
    "ConfigMap/ai-service-settings:data.APP_ENV",
    "Deployment/*:spec.replicas",
    "Deployment/ai-service*:spec.template.spec.containers.0.resources.*",
    "Deployment/*:spec.template.spec.*ontainers.*.image",
    "HorizontalPodAutoscaler/ai-service:spec.m*Replicas",
    "HTTPRoute/ai-service:spec.hostnames.*",
)
# The Role, verb by verb (k8s/README.md, "The deploying identity").
ROLE_RULES = {
    ("apps", "deployments"): {"get", "patch"},
    ("", "services"): {"get", "patch"},
    ("gateway.networking.k8s.io", "httproutes"): {"get", "patch"},
    ("", "configmaps"): {"get", "patch"},
    ("", "pods"): {"list"},
    ("discovery.k8s.io", "endpointslices"): {"list"},
    ("autoscaling", "horizontalpodautoscalers"): {"list"},
    ("batch", "jobs"): {"get", "delete", "create"},  # the migration Job (create: by no name)
}
GENERATED = re.compile(r"\b(ai-service-settings)-[a-z0-9]{10}\b")


def rendered(overlay: str, component: str, tmp_path: Path) -> list[dict[str, Any]]:
    """The objects of `overlay` with `component` (its own one as committed, else a copy)."""
    if component == "canary":
        return render(K8S / "overlays" / overlay)
    return render(with_component(tmp_path, overlay, component))


@pytest.fixture(params=[(o, c) for o in OVERLAYS for c in COMPONENTS], ids="-".join)
def objects(request: pytest.FixtureRequest, tmp_path: Path) -> list[dict[str, Any]]:
    overlay, component = request.param
    return rendered(overlay, component, tmp_path)


def of_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def settings(objects: list[dict[str, Any]]) -> dict[str, str]:
    (config,) = [
        o for o in objects if o["kind"] == "ConfigMap" and GENERATED.match(o["metadata"]["name"])
    ]
    data: dict[str, str] = config["data"]
    return data


def pod_containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_core_objects_are_valid_kubernetes(objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        if obj["kind"] != "HTTPRoute":
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_route_is_valid_gateway_api_with_a_named_weighted_rule(
    objects: list[dict[str, Any]],
) -> None:
    schemas = gateway_schemas()
    registry: Registry = Registry().with_resources(
        (uri, Resource.from_contents(s, default_specification=DRAFT7)) for uri, s in schemas.items()
    )
    validator = jsonschema.Draft7Validator(
        schemas["gateway.networking.k8s.io.v1.HTTPRoute"], registry=registry
    )
    services = of_kind(objects, "Service")
    (route,) = of_kind(objects, "HTTPRoute").values()
    validator.validate(route)
    # rules[].name and sessionPersistence (Gateway API v1.2) postdate that schema: checked here.
    (rule,) = [r for r in route["spec"]["rules"] if r.get("name") == "ai-service"]
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", rule["name"])
    for ref in rule["backendRefs"]:
        assert 0 <= ref["weight"] <= 1_000_000 and isinstance(ref["weight"], int)
        assert ref["port"] in [p["port"] for p in services[ref["name"]]["spec"]["ports"]]
    if "ai-service-canary" in services:
        weights = {r["name"]: r["weight"] for r in rule["backendRefs"]}
        assert weights == {"ai-service-stable": 100, "ai-service-canary": 0}
        persistence = rule["sessionPersistence"]
        assert persistence["type"] in ("Cookie", "Header")
        assert persistence["cookieConfig"]["lifetimeType"] in ("Permanent", "Session")
    else:
        assert [r["name"] for r in rule["backendRefs"]] == ["ai-service"]


def test_pods_are_hardened_probed_and_sized(objects: list[dict[str, Any]]) -> None:
    env = settings(objects)
    for name, deployment in of_kind(objects, "Deployment").items():
        spec = deployment["spec"]
        pod = spec["template"]["spec"]
        assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, name
        # Only the service's pods have an API token: to watch their registry ConfigMap.
        assert pod["automountServiceAccountToken"] is name.startswith("ai-service"), name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in pod_containers(pod):
            where = f"{name}/{container['name']}"
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["capabilities"] == {"drop": ["ALL"]}, where
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), where
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), where
        main = pod["containers"][0]
        assert {"startupProbe", "readinessProbe", "livenessProbe"} <= set(main), name
        assert main["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        pre_stop = main["lifecycle"]["preStop"]["sleep"]["seconds"]
        if name.startswith("ai-service"):
            assert main["readinessProbe"]["httpGet"]["path"] == "/readyz", name
            drain = float(env["APP_DRAIN_SECONDS"]) + float(env["APP_SHUTDOWN_GRACE_SECONDS"])
            assert pod["terminationGracePeriodSeconds"] > pre_stop + drain, name
            mounts = {m["mountPath"]: m for m in main["volumeMounts"]}
            # Writable emptyDirs: the registry (validated ConfigMap changes) and /tmp.
            assert not mounts[env["APP_REGISTRY_DIR"]].get("readOnly"), name
            assert "/tmp" in mounts  # noqa: S108
    for account in of_kind(objects, "ServiceAccount").values():
        assert account["automountServiceAccountToken"] is False


def test_the_expand_migration_job_is_hardened_and_runs_what_the_service_runs(
    objects: list[dict[str, Any]],
) -> None:
    (job,) = of_kind(objects, "Job").values()
    pod = job["spec"]["template"]["spec"]
    (migrate,) = pod["containers"]
    assert migrate["command"] == ["python", "-m", "app.db", "upgrade", "--phase", "expand"]
    assert pod["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] <= 3
    assert job["spec"]["activeDeadlineSeconds"] > 0  # a hung migration stops the deploy
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = migrate["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert {"cpu", "memory"} <= set(migrate["resources"]["requests"])
    assert {"cpu", "memory"} <= set(migrate["resources"]["limits"])
    # The same image, settings and secret (APP_DATABASE_URL) as the service's pods; the pods
    # themselves never migrate.
    (service,) = [
        d["spec"]["template"]["spec"]["containers"][0]
        for n, d in of_kind(objects, "Deployment").items()
        if n in ("ai-service", "ai-service-stable", "ai-service-blue")
    ]
    assert migrate["envFrom"] == service["envFrom"] and migrate["image"] == service["image"]
    assert settings(objects)["APP_DATABASE_AUTO_MIGRATE"] == "false"


def test_labels_and_selectors_agree(objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        labels = obj["metadata"].get("labels", {})
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        assert labels.get("app.kubernetes.io/part-of") == PART_OF, where
        assert labels.get("app.kubernetes.io/name"), where
    deployments = of_kind(objects, "Deployment")
    pods = {n: d["spec"]["template"]["metadata"]["labels"] for n, d in deployments.items()}
    for name, deployment in deployments.items():
        assert matches(deployment["spec"]["selector"]["matchLabels"], pods[name]), name
        if name.startswith("ai-service"):
            track = pods[name]["track"]
            assert track in TRACKS and name in ("ai-service", f"ai-service-{track}"), name
            env = {
                e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
            }
            assert (
                env["APP_TRACK"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['track']"
            )
    selected = {
        **{f"Service/{n}": s["spec"]["selector"] for n, s in of_kind(objects, "Service").items()},
        **{
            f"{kind}/{n}": o["spec"][key]["matchLabels"]
            for kind, key in (("PodDisruptionBudget", "selector"), ("NetworkPolicy", "podSelector"))
            for n, o in of_kind(objects, kind).items()
        },
    }
    for where, selector in selected.items():
        assert any(matches(selector, labels) for labels in pods.values()), f"{where} selects no pod"
    for hpa in of_kind(objects, "HorizontalPodAutoscaler").values():
        assert hpa["spec"]["scaleTargetRef"]["name"] in deployments


def test_tracks_run_the_same_pod(objects: list[dict[str, Any]]) -> None:
    """The components copy the base pod: only the track differs between tracks."""
    pods = [
        json.dumps(d["spec"]["template"], sort_keys=True).replace(
            f'"track": "{d["spec"]["template"]["metadata"]["labels"]["track"]}"', '"track": ""'
        )
        for n, d in of_kind(objects, "Deployment").items()
        if n.startswith("ai-service")
    ]
    assert len(pods) == 2 and len(set(pods)) == 1


def test_network_policies_admit_only_the_gateway_prometheus_and_the_service(
    objects: list[dict[str, Any]],
) -> None:
    policies = of_kind(objects, "NetworkPolicy")
    service = [peer for rule in policies["ai-service"]["spec"]["ingress"] for peer in rule["from"]]
    names = [p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in service]
    assert names == ["gateway-system", "monitoring"]
    assert service[1]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}
    (model,) = policies["model-server"]["spec"]["ingress"]
    assert model["from"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "ai-service"}}}
    ]


def test_the_role_grants_only_what_the_toolkit_uses(objects: list[dict[str, Any]]) -> None:
    assert not [o for o in objects if o["kind"].startswith("Cluster")]
    role = of_kind(objects, "Role")["ai-rollout-deployer"]
    granted: dict[tuple[str, str], set[str]] = {}
    names: dict[str, set[str]] = {}
    for rule in role["rules"]:
        assert "*" not in [*rule["verbs"], *rule["resources"], *rule["apiGroups"]]
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
                names.setdefault(resource, set()).update(rule.get("resourceNames", []))
    assert granted == ROLE_RULES
    moved = {"Deployment": "deployments", "Service": "services", "HTTPRoute": "httproutes"}
    for obj in objects:
        name = obj["metadata"]["name"]
        if obj["kind"] in moved and name.startswith("ai-service"):
            assert name in names[moved[obj["kind"]]], f"the Role cannot patch {obj['kind']}/{name}"
    assert names["configmaps"] == {"ai-service-registry"}
    assert names["jobs"] == {"ai-service-migrate"}
    binding = of_kind(objects, "RoleBinding")["ai-rollout-deployer"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]


def test_the_service_may_read_its_registry_configmap_and_nothing_else(
    objects: list[dict[str, Any]],
) -> None:
    """Issue 8, item 5: the service watches the registry ConfigMap it is told to, by name (a
    list/watch with fieldSelector metadata.name, which `resourceNames` admits)."""
    roles = of_kind(objects, "Role")
    assert set(roles) == {"ai-rollout-deployer", "ai-service-registry-reader"}
    (rule,) = roles["ai-service-registry-reader"]["rules"]
    assert rule == {
        "apiGroups": [""],
        "resources": ["configmaps"],
        "resourceNames": ["ai-service-registry"],
        "verbs": ["get", "list", "watch"],
    }
    binding = of_kind(objects, "RoleBinding")["ai-service-registry-reader"]
    assert binding["roleRef"]["name"] == "ai-service-registry-reader"
    accounts = {
        d["spec"]["template"]["spec"]["serviceAccountName"]
        for n, d in of_kind(objects, "Deployment").items()
        if n.startswith("ai-service")
    }
    assert [s["name"] for s in binding["subjects"]] == sorted(accounts) == ["ai-service"]
    assert settings(objects)["APP_REGISTRY_CONFIGMAP"] == "ai-service-registry"
    assert "ai-service-registry" in of_kind(objects, "ConfigMap")


def test_one_image_for_every_container_set_by_the_overlay(tmp_path: Path) -> None:
    copy = with_component(tmp_path, "production", "canary")
    kustomization = copy / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace("newTag: latest", "newTag: 0123abc"))
    images = {
        c["image"]
        for d in render(copy)
        if d["kind"] == "Deployment"
        for c in pod_containers(d["spec"]["template"]["spec"])
    }
    assert images == {"ghcr.io/your-org/ai-service:0123abc"}


def test_the_registry_configmap_is_registry_exactly() -> None:
    """Regenerate with `./dev k8s-registry` when this fails."""
    import yaml  # noqa: PLC0415

    committed = yaml.safe_load(MANIFEST.read_text())
    files = {from_configmap_key(k): v for k, v in committed["data"].items()}
    assert files == registry_files(REPO / "registry"), "run ./dev k8s-registry"
    assert MANIFEST.read_text() == manifest(REPO / "registry"), "run ./dev k8s-registry"


def flatten(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from flatten(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from flatten(item, f"{path}.{index}")
    else:
        yield path, value


def fields(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """Every field of every object as `Kind/name:path`, generated name suffixes removed."""
    out: dict[str, Any] = {}
    for obj in json.loads(GENERATED.sub(r"\1", json.dumps(objects))):
        key = f"{obj['kind']}/{obj['metadata']['name']}"
        out.update({f"{key}:{path}": v for path, v in flatten(obj)})
    return out


@pytest.mark.parametrize("component", COMPONENTS)
def test_staging_and_production_differ_only_where_documented(
    component: str, tmp_path: Path
) -> None:
    staging = fields(rendered("staging", component, tmp_path / "staging"))
    production = fields(rendered("production", component, tmp_path / "production"))
    differ = sorted(
        k for k in staging.keys() | production.keys() if staging.get(k) != production.get(k)
    )
    undocumented = [k for k in differ if not any(fnmatch.fnmatch(k, p) for p in ALLOWED_DRIFT)]
    assert not undocumented, f"differences not in ALLOWED_DRIFT: {undocumented}"
    readme = (K8S / "README.md").read_text()
    for pattern in ALLOWED_DRIFT:
        assert f"`{pattern}`" in readme, f"k8s/README.md does not list {pattern}"
