"""Label and field selectors on list and watch, with the operators the API server documents."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from tests.support.kube.errors import bad_request

Predicate = Callable[[dict[str, Any]], bool]

_SET = re.compile(r"^\s*(!?)([\w./-]+)\s*(?:(in|notin)\s*\(([^)]*)\))?\s*$")
_EQ = re.compile(r"^\s*([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)\s*$")


def _terms(text: str) -> list[str]:
    """Split on commas outside parentheses: `a in (x,y),b!=z` is two terms."""
    terms, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return [t for t in terms if t.strip()]


def _label_in(key: str, allowed: set[str], *, negate: bool) -> Callable[[Mapping[str, str]], bool]:
    return lambda labels: (labels.get(key) in allowed) != negate


def _label_exists(key: str, *, negate: bool) -> Callable[[Mapping[str, str]], bool]:
    return lambda labels: (key in labels) != negate


def label_selector(text: str | None) -> Predicate:
    """`app=web`, `tier!=db`, `env in (a,b)`, `env notin (c)`, `canary`, `!canary`, comma = and."""
    if not text:
        return lambda obj: True
    checks: list[Callable[[Mapping[str, str]], bool]] = []
    for term in _terms(text):
        if eq := _EQ.match(term):
            key, op, value = eq.groups()
            if op == "!=":
                checks.append(_label_in(key, {value}, negate=True))
            else:
                checks.append(_label_in(key, {value}, negate=False))
        elif (found := _SET.match(term)) and not (found.group(1) and found.group(3)):
            negate, key, op, values = found.groups()
            allowed = {v.strip() for v in (values or "").split(",") if v.strip()}
            if op is not None:
                checks.append(_label_in(key, allowed, negate=op == "notin"))
            else:
                checks.append(_label_exists(key, negate=bool(negate)))
        else:
            raise bad_request(f"unable to parse requirement: invalid label selector: {term!r}")

    def matches(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(check(labels) for check in checks)

    return matches


_FIELDS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "metadata.name": lambda o: o.get("metadata", {}).get("name"),
    "metadata.namespace": lambda o: o.get("metadata", {}).get("namespace"),
}
_POD_FIELDS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "status.phase": lambda o: o.get("status", {}).get("phase"),
    "spec.nodeName": lambda o: o.get("spec", {}).get("nodeName"),
}


def field_selector(text: str | None, kind: str) -> Predicate:
    """`metadata.name=x` and `metadata.namespace`; pods add `status.phase`, `spec.nodeName`."""
    if not text:
        return lambda obj: True
    supported = {**_FIELDS, **(_POD_FIELDS if kind == "Pod" else {})}
    checks: list[Predicate] = []
    for term in _terms(text):
        eq = _EQ.match(term)
        if not eq:
            raise bad_request(f"invalid field selector: {term!r}")
        field, op, value = eq.groups()
        if field not in supported:
            raise bad_request(f'field label not supported: "{field}"')
        get = supported[field]
        checks.append(_field_is(get, value, negate=op == "!="))
    return lambda obj: all(check(obj) for check in checks)


def _field_is(get: Callable[[dict[str, Any]], Any], value: str, *, negate: bool) -> Predicate:
    return lambda obj: (get(obj) == value) != negate
