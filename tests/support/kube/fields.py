"""Server-side apply: which manager owns which field, apply conflicts, and managedFields.

A field is a path of FieldsV1 elements (`f:spec`, `f:rules`, `k:{"name":"app"}`): maps are
granular per key, lists with a merge key in the built-in types are granular per item, and every
other list is atomic (owned and compared whole), which includes every list of a custom resource
without `x-kubernetes-list-type: map`, such as HTTPRoute `spec.rules`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Any

from tests.support.kube.errors import ApiError
from tests.support.kube.patching import merge_key, merge_patch, strategic_merge

Path = tuple[str, ...]
Owner = tuple[str, str]  # (manager, operation "Apply" or "Update")
Owners = dict[Owner, set[Path]]

_UNTRACKED_METADATA = {
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "generateName",
}
_MISSING = object()


def field_set(kind: str, obj: dict[str, Any]) -> set[Path]:
    """The leaf fields an object (or an applied configuration) sets, status excluded."""
    out: set[Path] = set()
    for key, value in obj.items():
        if key in ("apiVersion", "kind", "status"):
            continue
        if key == "metadata" and isinstance(value, dict):
            for meta_key, meta_value in value.items():
                if meta_key not in _UNTRACKED_METADATA:
                    _walk(
                        kind,
                        meta_value,
                        ("metadata", meta_key),
                        ("f:metadata", f"f:{meta_key}"),
                        out,
                    )
        else:
            _walk(kind, value, (key,), (f"f:{key}",), out)
    return out


def _walk(kind: str, value: Any, spath: tuple[str, ...], fpath: Path, out: set[Path]) -> None:
    key = merge_key(kind, spath) if isinstance(value, list) else None
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _walk(kind, v, (*spath, k), (*fpath, f"f:{k}"), out)
    elif key is not None and value and all(isinstance(i, dict) and key in i for i in value):
        for item in value:
            item_path = (*fpath, _item(key, item[key]))
            for k, v in item.items():
                _walk(kind, v, (*spath, k), (*item_path, f"f:{k}"), out)
    else:
        out.add(fpath)


def _item(key: str, value: Any) -> str:
    return "k:" + json.dumps({key: value}, separators=(",", ":"))


def value_at(obj: Any, path: Path) -> Any:
    node = obj
    for element in path:
        if element.startswith("f:"):
            if not isinstance(node, dict) or element[2:] not in node:
                return _MISSING
            node = node[element[2:]]
        else:
            ((key, want),) = json.loads(element[2:]).items()
            if not isinstance(node, list):
                return _MISSING
            node = next((i for i in node if isinstance(i, dict) and i.get(key) == want), _MISSING)
            if node is _MISSING:
                return _MISSING
    return node


def _remove(obj: dict[str, Any], path: Path) -> None:
    parent = value_at(obj, path[:-1])
    last = path[-1]
    if last.startswith("f:") and isinstance(parent, dict):
        parent.pop(last[2:], None)
    elif isinstance(parent, list):
        ((key, want),) = json.loads(last[2:]).items()
        parent[:] = [i for i in parent if not (isinstance(i, dict) and i.get(key) == want)]


def dotted(path: Path) -> str:
    """`.spec.rules`, `.spec.template.spec.containers[name="app"].image`, as the server says it."""
    parts = []
    for element in path:
        if element.startswith("f:"):
            parts.append("." + element[2:])
        else:
            ((key, want),) = json.loads(element[2:]).items()
            parts.append(f"[{key}={json.dumps(want)}]")
    return "".join(parts)


def apply(
    kind: str,
    builtin: bool,
    api_version: str,
    live: dict[str, Any],
    config: dict[str, Any],
    owners: Owners,
    manager: str,
    force: bool,
) -> tuple[dict[str, Any], Owners]:
    """Merge an applied configuration into `live`; 409 on fields another manager set otherwise."""
    me: Owner = (manager, "Apply")
    wanted = field_set(kind, config)
    conflicts: dict[Owner, list[Path]] = {}
    for owner, owned in owners.items():
        if owner == me:
            continue
        for path in sorted(wanted & owned):
            if value_at(live, path) != value_at(config, path):
                conflicts.setdefault(owner, []).append(path)
    if conflicts and not force:
        raise _conflict_error(conflicts, api_version)
    result = {owner: set(owned) for owner, owned in owners.items()}
    for owner, paths in conflicts.items():
        result[owner] -= set(paths)
    others: set[Path] = set().union(*(owned for owner, owned in result.items() if owner != me))
    dropped = result.get(me, set()) - wanted - others
    obj = copy.deepcopy(live)
    kept = others | wanted
    items = {  # an item nobody owns a field of any more goes whole, merge key included
        path[: cut + 1]
        for path in dropped
        for cut in range(len(path) - 1)
        if path[cut].startswith("k:") and not any(p[: cut + 1] == path[: cut + 1] for p in kept)
    }
    for path in sorted(items, key=len, reverse=True):
        _remove(obj, path)
    for path in sorted(dropped, key=len, reverse=True):
        if not any(path[: len(item)] == item for item in items):
            _remove(obj, path)
    merged = strategic_merge(kind, obj, config) if builtin else merge_patch(obj, config)
    result[me] = wanted
    return merged, {owner: owned for owner, owned in result.items() if owned}


def update(
    kind: str, old: dict[str, Any], new: dict[str, Any], owners: Owners, manager: str
) -> Owners:
    """A non-apply write: its manager takes the fields it changed, the others lose them."""
    before, after = field_set(kind, old), field_set(kind, new)
    changed = {p for p in after if value_at(old, p) != value_at(new, p)} | (before - after)
    result = {owner: owned - changed for owner, owned in owners.items()}
    me: Owner = (manager, "Update")
    result[me] = result.get(me, set()) | (changed & after)
    return {owner: owned for owner, owned in result.items() if owned}


def managed_fields(
    owners: Owners, api_version: str, times: dict[Owner, str]
) -> list[dict[str, Any]]:
    """The `metadata.managedFields` entries, FieldsV1 trees as the server writes them."""
    entries = []
    for (manager, operation), owned in sorted(owners.items()):
        entries.append(
            {
                "manager": manager,
                "operation": operation,
                "apiVersion": api_version,
                "time": times.get((manager, operation), ""),
                "fieldsType": "FieldsV1",
                "fieldsV1": _tree(owned),
            }
        )
    return entries


def _tree(paths: Iterable[Path]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path in paths:
        node = root
        for element in path:
            node = node.setdefault(element, {})
            if element.startswith("k:"):
                node.setdefault(".", {})
    return root


def _conflict_error(conflicts: dict[Owner, list[Path]], api_version: str) -> ApiError:
    count = sum(len(paths) for paths in conflicts.values())
    causes = [
        {
            "reason": "FieldManagerConflict",
            "message": f'conflict with "{manager}" using {api_version}',
            "field": dotted(path),
        }
        for (manager, _), paths in conflicts.items()
        for path in paths
    ]
    lines = [f"{c['message']}: {c['field']}" for c in causes]
    noun = "conflict" if count == 1 else "conflicts"
    message = f"Apply failed with {count} {noun}: " + "; ".join(lines)
    return ApiError(409, "Conflict", message, {"causes": causes})
