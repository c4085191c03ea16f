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
    target: RolloutTarget, *, to: str, switch: str | None, candidate: str | None, policy: Path
) -> Moved:
    """Blue-green `switch`, or start `candidate` as the prompt canary, or move the canary `to`
    the policy's next step, a share, or `full` (the canary's version becomes stable)."""
    if switch:
        _code(target).backend.switch(switch)
        return _left(target, f"switched to {switch}")
    if isinstance(target, PromptTarget) and candidate and target.identity().candidate is None:
        share = _share(to, policy, 0.0)
        registry_ops.start_canary(target.registry_dir, target.prompt, candidate, share)
        if to != "full":
            return _left(target, f"{candidate} started as canary")
    if to == "full":
        target.finish()
        return _left(target, "promoted")
    before = target.canary_percent()
    target.set_percent(_share(to, policy, before))
    return _left(target, f"canary moved from {before:g}%")


def _share(to: str, policy: Path, current: float) -> float:
    if to == "full":
        return 100.0
    if to == "next":
        return load_policy(policy).next_step(current)
    return _percent(to)


def rollback(target: RolloutTarget, *, switch: str | None) -> Moved:
    """Back to the last good version: the canary retires, or (blue-green) traffic returns to
    the track that served before the switch, or to `switch`."""
    before = target.summary()
    if switch:
        _code(target).backend.switch(switch)
    else:
        target.rollback()
    return _left(target, "rolled back" if target.summary() != before else "nothing to roll back")
