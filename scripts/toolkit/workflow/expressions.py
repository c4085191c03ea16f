"""`${{ }}` expressions and `if:` conditions, evaluated by GitHub's own evaluator (npm
@actions/expressions) in one long-lived node process (tools/npm/expressions.mjs)."""

from __future__ import annotations

import json
import shutil
import subprocess  # nosec B404  # node, our own helper script, no shell
import threading
from dataclasses import dataclass
from typing import Any

from contract.files import REPO_ROOT
from scripts.toolkit.cli import ToolkitError

NPM_DIR = REPO_ROOT / "tools" / "npm"
SERVER = NPM_DIR / "expressions.mjs"


@dataclass(frozen=True)
class Status:
    """What success(), failure() and cancelled() return where an expression is evaluated."""

    success: bool
    failure: bool
    cancelled: bool


class Evaluator:
    """One node process evaluating batches of conditions and templates; close() stops it."""

    def __init__(self) -> None:
        node = shutil.which("node")
        if node is None or not (NPM_DIR / "node_modules" / "@actions" / "expressions").is_dir():
            raise ToolkitError(
                "the local runner needs node and tools/npm/node_modules: run ./dev setup first."
            )
        self._process = subprocess.Popen(  # noqa: S603  # nosec B603  # fixed argv
            [node, str(SERVER)],
            cwd=NPM_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._lock = threading.Lock()

    def batch(
        self, context: dict[str, Any], status: Status, items: list[tuple[str, str]]
    ) -> list[Any]:
        """Each (kind, text) evaluated: `if` gives a bool, `template` the interpolated value
        (typed when the text is one expression alone, else a string)."""
        if not items:
            return []
        request = {
            "context": context,
            "status": {"success": status.success, "failure": status.failure,
                       "cancelled": status.cancelled},
            "items": [{"kind": kind, "text": text} for kind, text in items],
        }  # fmt: skip
        assert self._process.stdin is not None and self._process.stdout is not None  # noqa: S101  # nosec B101  # set by Popen
        with self._lock:
            self._process.stdin.write(json.dumps(request) + "\n")
            self._process.stdin.flush()
            line = self._process.stdout.readline()
        if not line:
            raise ToolkitError("the expression evaluator (node tools/npm/expressions.mjs) died.")
        results: list[dict[str, Any]] = json.loads(line)["results"]
        errors = [r["error"] for r in results if "error" in r]
        if errors:
            raise ToolkitError(f"cannot evaluate {errors[0]}")
        return [r["value"] for r in results]

    def condition(self, context: dict[str, Any], status: Status, text: str) -> bool:
        return bool(self.batch(context, status, [("if", text)])[0])

    def text(self, context: dict[str, Any], status: Status, value: Any) -> Any:
        """A value with its `${{ }}` parts evaluated: strings interpolated, mappings and lists
        walked, anything else as is."""
        if isinstance(value, dict):
            keys = [k for k, v in value.items() if isinstance(v, str) and "${{" in v]
            values = self.batch(context, status, [("template", value[k]) for k in keys])
            return {**value, **dict(zip(keys, values, strict=True))}
        if isinstance(value, str) and "${{" in value:
            return self.batch(context, status, [("template", value)])[0]
        return value

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
