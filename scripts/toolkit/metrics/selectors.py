"""PromQL series selectors, `name{label="value", other=~"regex"}`: parsed, matched, rendered."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*')
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


def _unescape(text: str) -> str:
    """A PromQL double-quoted string's value (`\\"` is `"`, `\\\\` is `\\`, `\\n` a newline)."""
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), text)


def _escape(value: str) -> str:
    """`value` as the inside of a PromQL double-quoted string."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@dataclass(frozen=True)
class Selector:
    """A PromQL series selector: a metric name and label matchers."""

    name: str
    matchers: tuple[tuple[str, str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Selector:
        """Parse `name{label="v", other=~"re.*"}`; raises ValueError with what is wrong."""
        match = re.fullmatch(r"\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*(?:\{(.*)\})?\s*", text, re.S)
        if not match:
            raise ValueError(f'not a series selector: {text!r} (expected name{{label="v"}})')
        name, body = match.group(1), match.group(2) or ""
        matchers, position = [], 0
        while body[position:].strip():
            found = _MATCHER.match(body, position)
            if not found:
                rest = body[position:].strip()
                raise ValueError(f"cannot read the label matchers of {text!r} at {rest!r}")
            label, op, value = found.group(1), found.group(2), _unescape(found.group(3))
            if op in ("=~", "!~"):
                try:
                    re.compile(value)
                except re.error as exc:
                    raise ValueError(
                        f"bad regular expression {value!r} for {label} in {text!r}: {exc}"
                    ) from exc
            matchers.append((label, op, value))
            position = found.end()
            if body.startswith(",", position):
                position += 1
            elif body[position:].strip():
                rest = body[position:].strip()
                raise ValueError(f"expected ',' between the label matchers of {text!r} at {rest!r}")
        return cls(name, tuple(matchers))

    @classmethod
    def parse_sum(cls, text: str | Sequence[str] | None) -> tuple[Selector, ...] | None:
        """One selector or a list of them (their series summed), as a policy names them."""
        if text is None:
            return None
        return tuple(cls.parse(t) for t in ([text] if isinstance(text, str) else text))

    def with_labels(self, labels: Mapping[str, str]) -> Selector:
        """This selector with equality matchers for `labels` added."""
        extra = tuple((k, "=", v) for k, v in sorted(labels.items()))
        return Selector(self.name, self.matchers + extra)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a series with `labels` is selected (labels absent count as empty)."""
        for label, op, value in self.matchers:
            actual = labels.get(label, "")
            if (op == "=" and actual != value) or (op == "!=" and actual == value):
                return False
            if op in ("=~", "!~") and (re.fullmatch(value, actual) is not None) != (op == "=~"):
                return False
        return True

    def promql(self, suffix: str = "") -> str:
        """The selector in PromQL, for `name + suffix` (e.g. `_bucket`)."""
        body = ",".join(f'{k}{op}"{_escape(v)}"' for k, op, v in self.matchers)
        return f"{self.name}{suffix}{{{body}}}"
