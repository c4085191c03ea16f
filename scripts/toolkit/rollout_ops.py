"""Move a rollout by hand: promote (a step, a share, all of it, or a blue-green switch) and
roll back. Each re-reads the state it leaves and says THAT, never what it meant to do."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.toolkit import registry_ops
from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.policy import load_policy
from scripts.toolkit.targets import CodeTarget, PromptTarget, RolloutTarget
from scripts.toolkit.traffic.base import RollsBackFirst


@dataclass(frozen=True)
class Moved:
    """What a move left: one sentence, and the target's state."""

    message: str
    state: dict[str, Any]


def _left(target: RolloutTarget, what: str) -> Moved:
    return Moved(f"{what}: {target.summary()}", target.describe())


def _percent(value: str) -> float:
    try:
        percent = float(value.rstrip("%"))
    except ValueError as exc:
        raise ToolkitError(f"--to takes next, full or a percentage, not {value!r}.") from exc
    if not 0 < percent <= 100:
        raise ToolkitError(f"--to {value}: a share must be above 0 and at most 100.")
    return percent


def _code(target: RolloutTarget) -> CodeTarget:
    if not isinstance(target, CodeTarget):
        raise ToolkitError("--switch is for code (blue-green) rollouts.")
    return target


def promote(
    target: RolloutTarget,
    *,
    to: str,
    switch: str | None,
    candidate: str | None,
    policy: Path,
    add: Path | None = None,
) -> Moved:
    """Blue-green `switch`; or register the version file `add` (then stop, unless a
    `candidate` is named); or start `candidate` as the prompt canary (`--to full`: make it
    production at once, e.g. back to the version before the last promotion); or move the canary
    `to` the policy's next step, a share, or `full` (the canary's version becomes stable)."""
    if switch:
        _code(target).backend.switch(switch)
        return _left(target, f"switched to {switch}")
    done = ""
    if add is not None:
        done = f"registered {_register(target, add)} (retired, no traffic)"
        if candidate is None:
            return _left(target, done)
        done += "; "
    if isinstance(target, PromptTarget) and candidate and target.identity().candidate is None:
        prompt = target.prompt
        if to == "full":
            target.store.change(lambda d: registry_ops.make_production(d, prompt, candidate))
            return _left(target, f"{done}{candidate} made production")
        share = _share(to, policy, 0.0)
        target.store.change(lambda d: registry_ops.start_canary(d, prompt, candidate, share))
        return _left(target, f"{done}{candidate} started as canary")
    if to == "full":
        target.finish()
        return _left(target, "promoted")
    before = target.canary_percent()
    per_request = load_policy(policy).code_assignment == "request"
    target.set_percent(_share(to, policy, before), per_request=per_request)
    return _left(target, f"canary moved from {before:g}%")


def _register(target: RolloutTarget, source: Path) -> str:
    """Register a prompt version file, or a model version folder, in the target's registry."""
    if not isinstance(target, PromptTarget):
        raise ToolkitError("--add registers prompt and model versions: add --target prompt.")
    where = target.store.where
    if source.is_dir() or source.name == "config.yaml":
        folder = target.store.change(lambda d: registry_ops.add_model_version(d, source))
        return f"model {folder.parent.name}@{folder.name} in {where}"
    prompt = target.prompt
    path = target.store.change(lambda d: registry_ops.add_version(d, prompt, source))
    return f"{prompt} {path.stem} in {where}"


def _share(to: str, policy: Path, current: float) -> float:
    if to == "full":
        return 100.0
    if to == "next":
        return load_policy(policy).next_step(current)
    return _percent(to)


def rollback(target: RolloutTarget, *, switch: str | None) -> Moved:
    """Back to the last good version: the canary retires, or (blue-green) traffic returns to
    the track that served before the switch, or to `switch`. A cluster backend moves traffic
    as its first write (nothing is read before it) and reports the state it confirmed."""
    if not switch and isinstance(target, CodeTarget) and isinstance(target.backend, RollsBackFirst):
        moved, state = target.backend.rollback()
        what = "rolled back" if moved else "nothing to roll back"
        data = {"target": target.kind, "backend": target.backend.name, **state.to_dict()}
        return Moved(f"{what}: {state.summary()}", data)
    if not switch and isinstance(target, PromptTarget):  # the write first, bounded in time
        return _left(target, "rolled back" if target.retire_canary() else "nothing to roll back")
    before = target.summary()
    if switch:
        _code(target).backend.switch(switch)
    else:
        target.rollback()
    return _left(target, "rolled back" if target.summary() != before else "nothing to roll back")
