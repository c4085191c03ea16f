"""The resource kinds the emulator serves: group, version, plural, Kind, scope and subresources."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    """One served resource, as API discovery would describe it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    builtin: bool = True  # False for custom resources (CRDs): no strategic merge patch
    status: bool = True  # has a /status subresource
    scale: bool = False  # has a /scale subresource

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """How the API server names the resource in messages: `deployments.apps`, `pods`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def has_generation(self) -> bool:
        """Objects with a spec count generations (ConfigMaps, Secrets, EndpointSlices do not)."""
        return self.status or not self.builtin


GATEWAY = "gateway.networking.k8s.io"

KINDS: tuple[Kind, ...] = (
    Kind("", "v1", "namespaces", "Namespace", namespaced=False),
    Kind("", "v1", "pods", "Pod"),
    Kind("", "v1", "services", "Service"),
    Kind("", "v1", "endpoints", "Endpoints", status=False),
    Kind("", "v1", "configmaps", "ConfigMap", status=False),
    Kind("", "v1", "secrets", "Secret", status=False),
    Kind("", "v1", "serviceaccounts", "ServiceAccount", status=False),
    Kind("", "v1", "events", "Event", status=False),
    Kind("apps", "v1", "deployments", "Deployment", scale=True),
    Kind("apps", "v1", "replicasets", "ReplicaSet", scale=True),
    Kind("batch", "v1", "jobs", "Job"),
    Kind("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", status=False),
    Kind("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget"),
    Kind("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler"),
    Kind("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", status=False),
    Kind("rbac.authorization.k8s.io", "v1", "roles", "Role", status=False),
    Kind("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", status=False),
    Kind(GATEWAY, "v1", "httproutes", "HTTPRoute", builtin=False),
    Kind(GATEWAY, "v1", "gateways", "Gateway", builtin=False),
    Kind(GATEWAY, "v1", "gatewayclasses", "GatewayClass", namespaced=False, builtin=False),
)

_BY_PATH = {(k.group, k.version, k.plural): k for k in KINDS}
_BY_KIND = {(k.api_version, k.kind): k for k in KINDS}


def by_path(group: str, version: str, plural: str) -> Kind | None:
    return _BY_PATH.get((group, version, plural))


def by_kind(api_version: str, kind: str) -> Kind:
    """The Kind of a manifest's `apiVersion` and `kind`; an unknown one is a test's mistake."""
    try:
        return _BY_KIND[(api_version, kind)]
    except KeyError:
        known = ", ".join(sorted(f"{k.api_version} {k.kind}" for k in KINDS))
        raise ValueError(
            f"the emulator does not serve {api_version} {kind}; it serves: {known}"
        ) from None
