"""The declared local stand-ins for `uses:` actions (.github/local-stand-ins.yaml): what the
local runner does instead of each third-party action the workflows use."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scripts.toolkit.cli import ToolkitError

STAND_INS = Path(".github") / "local-stand-ins.yaml"


@dataclass(frozen=True)
class StandIn:
    """One action's stand-in: a notice, a bash script run like a `run:` step (the step's
    `with:` inputs as INPUT_<NAME>), fixed outputs, or a refusal."""

    action: str
    notice: str = ""
    run: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    refuse: str = ""


def action_name(uses: str) -> str:
    """`docker/login-action@74a5...` -> `docker/login-action` (the ref is not the stand-in's)."""
    return uses.split("@", 1)[0].lower()


def load_stand_ins(workspace: Path) -> dict[str, StandIn]:
    """The stand-ins declared in the workspace's .github/local-stand-ins.yaml."""
    path = workspace / STAND_INS
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ToolkitError(f"cannot read the local stand-ins {path}: {exc}.") from exc
    actions = data.get("actions") if isinstance(data, dict) else None
    if not isinstance(actions, dict):
        raise ToolkitError(f"{path} needs an `actions:` mapping of action name to stand-in.")
    stand_ins: dict[str, StandIn] = {}
    for name, entry in actions.items():
        if not isinstance(entry, dict) or not set(entry) <= {"notice", "run", "outputs", "refuse"}:
            raise ToolkitError(
                f"{path}: the stand-in of {name} takes notice, run, outputs or refuse only."
            )
        outputs = {str(k): str(v) for k, v in (entry.get("outputs") or {}).items()}
        stand_ins[str(name).lower()] = StandIn(
            action=str(name),
            notice=str(entry.get("notice", "")),
            run=str(entry.get("run", "")),
            outputs=outputs,
            refuse=str(entry.get("refuse", "")),
        )
    return stand_ins


def input_variables(with_: dict[str, Any]) -> dict[str, str]:
    """`with:` as an action sees it: INPUT_<NAME> (upper case, spaces as `_`), strings."""
    return {
        "INPUT_" + name.replace(" ", "_").upper(): _text(value) for name, value in with_.items()
    }


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
