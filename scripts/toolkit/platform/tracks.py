"""Deploy and retire tracks, move traffic between them, promote and roll back a canary.

Traffic-only changes (weights, switch, the first step of a rollback) are single
compare-and-swap PUTs to the router and never wait for another operation: a rollback moves
traffic at once, even while a deploy is waiting for its instance. Process changes hold the
platform's operation lock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from contract.tracks import TRACKS, Track
from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.platform import gitrefs, operations
from scripts.toolkit.platform.launch import MANAGED_ENV, checkout_spec
from scripts.toolkit.platform.state import ProcessRecord, StateStore
from scripts.toolkit.traffic.base import TrafficState

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DEPLOY = "python -m scripts.local_platform deploy --track"
# Tracks a blue-green switch sends all traffic to (the canary moves by weight instead).
SWITCHABLE = tuple(t.value for t in Track if t is not Track.CANARY)


def parse_env(pairs: list[str] | None) -> dict[str, str]:
    """`KEY=VALUE` items as a mapping; the platform's own settings are refused."""
    env: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not ENV_NAME.match(key):
            raise ToolkitError(f"--env takes KEY=VALUE, not {pair!r}.")
        if key in MANAGED_ENV:
            raise ToolkitError(f"{key} is set by the platform for every instance; drop it.")
        env[key] = value
    return env


def traffic(state_dir: Path) -> TrafficState:
    """What the router serves now, which version each of its tracks runs, and the track a
    blue-green switch moved traffic from."""
    state, client = operations.require_up(StateStore(state_dir))
    table = client.routes()
    apps = state.apps()
    versions = {t: str(apps[t].version) for t in table.backends if t in apps}
    return TrafficState(dict(table.weights), versions, state.switched_from)


def deploy(
    state_dir: Path,
    *,
    track: str,
    ref: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> ProcessRecord:
    """Start (or replace, without dropping a request) `track`'s instance running `ref` (a git
    ref of this repository, from a worktree in the state folder; default: the checkout) with
    extra settings `env`. A track new to the router starts at weight 0."""
    if track not in TRACKS:
        raise ToolkitError(f"--track must be one of {', '.join(TRACKS)}.")
    store = StateStore(state_dir)
    with store.operation():
        _, client = operations.require_up(store)
        operations.reconcile(store, client)
        spec = _spec(store, track=track, ref=ref, env=dict(env or {}))
        return operations.replace_track(store, client, spec, timeout=timeout)


def _spec(store: StateStore, *, track: str, ref: str | None, env: dict[str, str]) -> ProcessRecord:
    repo = Path(store.read().repo)
    spec = checkout_spec(repo, track)
    if ref is not None:
        revision = gitrefs.resolve(ref, repo=repo)
        path = gitrefs.add_worktree(revision, parent=store.dir / "worktrees", repo=repo)
        spec = replace(spec, cwd=str(path), version=revision.short, git_sha=revision.sha)
    # An explicit APP_VERSION / APP_GIT_SHA names the build (e.g. an image tag) instead.
    return replace(
        spec,
        version=env.pop("APP_VERSION", spec.version),
        git_sha=env.pop("APP_GIT_SHA", spec.git_sha),
        git_ref=ref,
        extra_env=env,
    )


def undeploy(state_dir: Path, *, track: str) -> TrafficState:
    """Take `track` out of the router first (its weight goes to stable, one change), then
    stop its instance. Nothing to do when it is not deployed."""
    if track not in TRACKS:
        raise ToolkitError(f"--track must be one of {', '.join(TRACKS)}.")
    store = StateStore(state_dir)
    _, client = operations.require_up(store)
    client.update(lambda table: operations.without_track(table, track))
    with store.operation():
        with store.edit() as state:
            if track == Track.CANARY:
                state.intent = None  # a promotion in progress is abandoned with its canary
            if state.switched_from == track:
                state.switched_from = None  # no way back to a track that is gone
        operations.reconcile(store, client)
    return traffic(state_dir)
