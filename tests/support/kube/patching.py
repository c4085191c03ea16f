"""The three patch types of the API server: JSON Patch, JSON merge patch and strategic merge patch.

Strategic merge follows the built-in types' `patchMergeKey`s (containers and env by `name`,
volumeMounts by `mountPath`, container ports by `containerPort`, Service ports by `port`,
conditions by `type`, ...) and the `$patch: replace|delete`, `$retainKeys`,
`$deleteFromPrimitiveList/<field>` and `$setElementOrder/<field>` directives.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch

from tests.support.kube.errors import bad_request, invalid

# field name -> merge key of that list in the built-in types (a list not named here is atomic)
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "conditions": "type",
    "ownerReferences": "uid",
    "resourceClaims": "name",
}


def merge_key(kind: str, path: tuple[str, ...]) -> str | None:
    """The merge key of the list at `path` in an object of `kind`, None when the list is atomic."""
    field = path[-1] if path else ""
    if field == "ports":
        if kind == "Service" and path == ("spec", "ports"):
            return "port"
        containers = ("containers", "initContainers", "ephemeralContainers")
        return "containerPort" if len(path) >= 2 and path[-2] in containers else None
    return MERGE_KEYS.get(field)


def json_patch(obj: dict[str, Any], patch: Any) -> dict[str, Any]:
    """RFC 6902; a failed `test` or a missing path is 422 Unprocessable, as the server answers."""
    if not isinstance(patch, list):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    try:
        result = jsonpatch.apply_patch(obj, patch, in_place=False)
    except jsonpatch.JsonPatchTestFailed as exc:
        raise invalid(
            f"the server rejected our request due to an error in our request: {exc}"
        ) from exc
    except (jsonpatch.JsonPatchConflict, jsonpatch.JsonPointerException) as exc:
        raise invalid(
            f"the server rejected our request due to an error in our request: {exc}"
        ) from exc
    except jsonpatch.InvalidJsonPatch as exc:
        raise bad_request(str(exc)) from exc
    if not isinstance(result, dict):
        raise invalid("the patch does not leave an object")
    return result


def merge_patch(obj: Any, patch: Any) -> Any:
    """RFC 7386: maps merge, null deletes, every list is replaced whole."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(obj) if isinstance(obj, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge(  # noqa: PLR0912  # one branch per directive
    kind: str, obj: Any, patch: Any, path: tuple[str, ...] = ()
) -> Any:
    """Kubernetes strategic merge patch of `patch` into `obj` (built-in types only)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    if directive is not None:
        raise bad_request(f"Unknown patch type: {directive}")
    result = dict(obj) if isinstance(obj, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in value]
            continue
        if key.startswith("$"):
            continue  # $retainKeys below; $setElementOrder only orders
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            mk = merge_key(kind, (*path, key))
            old = result.get(key)
            result[key] = _merge_list(
                kind, old if isinstance(old, list) else [], value, mk, (*path, key)
            )
        else:
            merged = strategic_merge(kind, result.get(key), value, (*path, key))
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(
    kind: str, old: list[Any], patch: list[Any], key: str | None, path: tuple[str, ...]
) -> list[Any]:
    if key is None or any(not isinstance(item, dict) for item in patch):
        return [copy.deepcopy(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    if any(item.get("$patch") == "replace" for item in patch):
        return [copy.deepcopy(i) for i in patch if "$patch" not in i]
    result = [copy.deepcopy(i) for i in old]
    for item in patch:
        if key not in item:
            raise bad_request(f"map: {item} does not contain declared merge key: {key}")
        index = next(
            (n for n, o in enumerate(result) if isinstance(o, dict) and o.get(key) == item[key]),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
        elif index is None:
            result.append(strategic_merge(kind, {}, item, path))
        else:
            result[index] = strategic_merge(kind, result[index], item, path)
    return result


def decode(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        raise bad_request(f"the body of the request is not JSON: {exc}") from exc
