"""The schema checks a real API server makes on the fields a rollout writes (422 Invalid).

Not the whole OpenAPI schema: the fields the traffic backends and the controller depend on,
with the API server's message shape (`<Kind>.<group> "<name>" is invalid: <field>: ...`).
HTTPRoute limits are the Gateway API CRD's (weights 0..1,000,000, at most 16 rules and 16
backendRefs per rule, names of DNS-label form).
"""

from __future__ import annotations

import re
from typing import Any

from tests.support.kube.errors import invalid
from tests.support.kube.kinds import Kind

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MAX_WEIGHT = 1_000_000


def validate(kind: Kind, obj: dict[str, Any]) -> None:
    """Raise 422 for the first invalid field, as the API server would."""
    problems = list(_problems(kind, obj))
    if problems:
        name = obj.get("metadata", {}).get("name", "")
        what = f"{kind.kind}.{kind.group}" if kind.group else kind.kind
        raise invalid(f'{what} "{name}" is invalid: ' + "; ".join(problems))


def _problems(kind: Kind, obj: dict[str, Any]) -> list[str]:
    spec = obj.get("spec") or {}
    if kind.kind in ("Deployment", "ReplicaSet"):
        return _workload(spec)
    if kind.kind == "HTTPRoute":
        return _route(spec)
    return []


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _workload(spec: dict[str, Any]) -> list[str]:
    problems = []
    replicas = spec.get("replicas", 1)
    if not _integer(replicas) or replicas < 0:
        problems.append(
            f"spec.replicas: Invalid value: {replicas!r}: must be greater than or equal to 0"
        )
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers")
    if not containers:
        problems.append("spec.template.spec.containers: Required value")
    for n, container in enumerate(containers or []):
        for field in ("name", "image"):
            if not (container or {}).get(field):
                problems.append(f"spec.template.spec.containers[{n}].{field}: Required value")
    return problems


def _route(spec: dict[str, Any]) -> list[str]:
    problems = []
    rules = spec.get("rules") or []
    if len(rules) > 16:
        problems.append(f"spec.rules: Too many: {len(rules)}: must have at most 16 items")
    for r, rule in enumerate(rules):
        where = f"spec.rules[{r}]"
        if "name" in rule and not _DNS_LABEL.match(str(rule["name"])):
            problems.append(f"{where}.name: Invalid value: {rule['name']!r}: must be a DNS label")
        refs = rule.get("backendRefs") or []
        if len(refs) > 16:
            problems.append(
                f"{where}.backendRefs: Too many: {len(refs)}: must have at most 16 items"
            )
        for b, ref in enumerate(refs):
            at = f"{where}.backendRefs[{b}]"
            if not ref.get("name"):
                problems.append(f"{at}.name: Required value")
            weight = ref.get("weight", 1)
            if not _integer(weight):
                problems.append(f"{at}.weight: Invalid value: {weight!r}: must be an integer")
            elif not 0 <= weight <= MAX_WEIGHT:
                bound = (
                    "greater than or equal to 0"
                    if weight < 0
                    else f"less than or equal to {MAX_WEIGHT}"
                )
                problems.append(
                    f"{at}.weight: Invalid value: {weight}: {at}.weight in body should be {bound}"
                )
            port = ref.get("port")
            if port is not None and (not _integer(port) or not 1 <= port <= 65535):
                problems.append(f"{at}.port: Invalid value: {port!r}: must be between 1 and 65535")
    return problems
