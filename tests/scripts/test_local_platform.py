"""The local platform end to end: `python -m scripts.local_platform` and the `local` traffic
backend over real processes (model server, app tracks, router, Prometheus when installed)."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from contract.assignment import in_canary
from scripts import local_platform, promote, rollback
from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.platform import launch, operations, tracks
from scripts.toolkit.platform.state import PlatformState, ProcessRecord, StateStore
from scripts.toolkit.processes import free_port, pid_running, process_identity, stop_pid
from scripts.toolkit.prometheus_server import prometheus_binary
from scripts.toolkit.traffic.local import LocalBackend
from tests.support.metrics import parse_metrics
from tests.support.polling import poll_until
from tests.support.service import REPO

pytestmark = pytest.mark.integration

QUESTION = "How long are deleted notes kept in the trash?"
USERS = [f"user-{n}" for n in range(120)]


@dataclass
class Platform:
    """A running platform in a scratch state folder."""

    state_dir: Path

    def cli(self, *args: str) -> tuple[int, dict[str, Any]]:
        """Run the CLI in-process with `--output json`; exit code and the envelope."""
        out = self.state_dir.parent / "stdout.json"
        with out.open("w") as handle, contextlib.redirect_stdout(handle):
            code = local_platform.main(
                [*args[:1], "--platform-dir", str(self.state_dir), "--output", "json", *args[1:]]
            )
        return code, json.loads(out.read_text())

    @property
    def state(self) -> PlatformState:
        return StateStore(self.state_dir).read()

    @property
    def backend(self) -> LocalBackend:
        return LocalBackend(self.state_dir)

    def answer(self, user: str, client: httpx.Client | None = None) -> httpx.Response:
        http = client or httpx
        return http.post(
            f"{self.url}/v1/answer", json={"question": QUESTION, "user_id": user}, timeout=30
        )

    @functools.cached_property
    def url(self) -> str:
        return self.state.router_url

    def kill(self, track: str) -> None:
        """SIGKILL a track's instance (a crash) and wait until it is gone."""
        record = self.state.processes[track]
        os.kill(record.pid, signal.SIGKILL)
        poll_until(lambda: not record.running(), timeout=5, message=f"{track} gone")


def start_platform(state_dir: Path, *options: str) -> Platform:
    platform = Platform(state_dir)
    code, envelope = platform.cli("up", "--port", str(free_port()), *options)
    assert code == 0, envelope
    return platform


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """One platform for the module; `down` always runs at the end."""
    state_dir = tmp_path_factory.mktemp("platform") / "state"
    try:
        yield start_platform(state_dir)
    finally:
        local_platform.main(["down", "--platform-dir", str(state_dir)])


@pytest.fixture
def canary_cleanup(platform: Platform) -> Iterator[Platform]:
    """Leave the platform as found: no canary, stable at 100%."""
    yield platform
    platform.backend.rollback_canary()


def test_up_is_idempotent_and_restarts_only_what_died(platform: Platform) -> None:
    before = {n: r.pid for n, r in platform.state.processes.items()}
    code, again = platform.cli("up")
    assert code == 0
    assert again["data"]["started"] == [], "nothing new when already up"
    assert {n: r.pid for n, r in platform.state.processes.items()} == before

    platform.kill("stable")
    platform.kill("router")
    code, restarted = platform.cli("up")
    assert code == 0
    assert sorted(restarted["data"]["started"]) == ["router", "stable"]
    after = {n: r.pid for n, r in platform.state.processes.items()}
    assert after["stable"] != before["stable"]
    assert after["router"] != before["router"]
    assert {n: p for n, p in after.items() if n not in ("stable", "router")} == {
        n: p for n, p in before.items() if n not in ("stable", "router")
    }
    response = platform.answer("alice")
    assert response.status_code == 200, "the restarted router serves the restarted stable"
    assert response.headers["X-Routed-Track"] == "stable"


def test_status_reports_health_weights_and_metric_source(platform: Platform) -> None:
    code, envelope = platform.cli("status")
    assert code == 0
    data = envelope["data"]
    assert data["status"] == "up"
    assert data["routes"]["weights"] == {"stable": 100.0}
    health = {n: p["health"] for n, p in data["processes"].items()}
    assert set(health.values()) == {"ready"}
    assert {"model-server", "stable", "router"} <= set(health)
    expected_source = "prometheus" if prometheus_binary() else "scrape"
    assert data["metric_source"] == expected_source
    assert "admin_token" not in json.dumps(envelope)
    state_file = platform.state_dir / "state.json"
    assert os.stat(state_file).st_mode & 0o777 == 0o600, "it holds the admin token"
    registry = Path(platform.state.registry_dir)
    assert registry.is_relative_to(platform.state_dir), "rollouts edit a copy, not registry/"
    version = httpx.get(f"{platform.url}/version").json()
    assert version["track"] == "stable"


@pytest.mark.skipif(prometheus_binary() is None, reason="Prometheus is not installed")
def test_prometheus_scrapes_every_track(canary_cleanup: Platform) -> None:
    platform = canary_cleanup
    platform.cli("deploy", "--track", "canary")
    prometheus_url = platform.state.prometheus_url
    assert prometheus_url is not None

    def tracks_up() -> set[str]:
        result = httpx.get(
            f"{prometheus_url}/api/v1/query", params={"query": "app_ready"}, timeout=5
        ).json()["data"]["result"]
        return {r["metric"]["track"] for r in result}

    poll_until(lambda: tracks_up() == {"stable", "canary"}, timeout=20, message="both scraped")


def test_deploy_ref_runs_that_commit_from_a_worktree(canary_cleanup: Platform) -> None:
    platform = canary_cleanup
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"],  # noqa: S607
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    code, envelope = platform.cli("deploy", "--track", "canary", "--ref", head)
    assert code == 0, envelope
    deployed = envelope["data"]["deployed"]
    worktree = Path(deployed["cwd"])
    assert worktree.is_relative_to(platform.state_dir)
    assert (worktree / ".git").exists()
    version = httpx.get(f"{deployed['url']}/version").json()
    assert head.startswith(version["app_version"]) and len(version["app_version"]) >= 7
    assert version["git_sha"] == head
    assert version["track"] == "canary"
    assert envelope["data"]["traffic"]["weights"]["canary"] == 0, "a new canary gets no traffic"


def test_fault_injected_canary_fails_only_its_users(canary_cleanup: Platform) -> None:
    platform = canary_cleanup
    code, _ = platform.cli("deploy", "--track", "canary", "--env", "APP_FAULT_ERROR_RATE=1")
    assert code == 0
    platform.backend.set_canary_weight(30)
    with httpx.Client() as client:
        outcomes = {u: platform.answer(u, client) for u in USERS}
    for user, response in outcomes.items():
        canary_user = in_canary(user, "router", 30)
        assert response.headers["X-Routed-Track"] == ("canary" if canary_user else "stable")
        assert response.status_code == (500 if canary_user else 200), user
    assert 0 < sum(r.status_code == 500 for r in outcomes.values()) < len(USERS)


def test_killed_canary_falls_back_to_stable_without_errors(canary_cleanup: Platform) -> None:
    platform = canary_cleanup
    platform.cli("deploy", "--track", "canary")
    platform.backend.set_canary_weight(50)
    platform.kill("canary")
    with httpx.Client() as client:
        responses = [platform.answer(u, client) for u in USERS]
    assert {r.status_code for r in responses} == {200}
    assert {r.headers["X-Routed-Track"] for r in responses} == {"stable"}
    metrics = parse_metrics(httpx.get(f"{platform.url}/-/metrics").text)
    assert metrics.value("router_fallbacks_total", from_track="canary") >= sum(
        in_canary(u, "router", 50) for u in USERS
    )


def test_rollback_after_the_canary_died_succeeds_and_is_idempotent(platform: Platform) -> None:
    platform.cli("deploy", "--track", "canary")
    backend = platform.backend
    backend.set_canary_weight(50)
    canary = platform.state.processes["canary"]
    platform.kill("canary")
    first = backend.rollback_canary()
    second = backend.rollback_canary()
    assert first.weights == second.weights == {"stable": 100.0}
    assert "canary" not in platform.state.processes
    assert not pid_running(canary.pid, canary.identity)
    with httpx.Client() as client:
        assert {platform.answer(u, client).headers["X-Routed-Track"] for u in USERS[:50]} == {
            "stable"
        }


def test_promote_replaces_stable_without_a_failed_request(canary_cleanup: Platform) -> None:
    platform = canary_cleanup
    before = platform.state.processes["stable"].version
    code, envelope = platform.cli(
        "deploy", "--track", "canary", "--env", "APP_VERSION=candidate", "--env", "X_NOTE=1"
    )
    assert code == 0, envelope
    backend = platform.backend
    assert backend.set_canary_weight(20).versions == {"stable": before, "canary": "candidate"}

    failures: list[str] = []
    served: Counter[str] = Counter()
    done = threading.Event()

    def client(number: int) -> None:
        with httpx.Client(timeout=30) as http:
            n = 0
            while not done.is_set():
                n += 1
                try:
                    response = platform.answer(f"load-{number}-{n % 25}", http)
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if response.status_code != 200:
                    failures.append(f"HTTP {response.status_code}: {response.text[:200]}")
                else:
                    served[response.json()["app_version"]] += 1

    clients = [threading.Thread(target=client, args=(n,)) for n in range(10)]
    for thread in clients:
        thread.start()
    try:
        poll_until(lambda: sum(served.values()) > 40, timeout=20, message="load running")
        promoted = backend.promote_canary()
        count = sum(served.values())
        poll_until(lambda: sum(served.values()) > count + 40, timeout=20, message="load after")
    finally:
        done.set()
        for thread in clients:
            thread.join(35)
    assert failures == []
    assert promoted.weights == {"stable": 100.0}
    assert promoted.versions == {"stable": "candidate"}
    assert served[str(before)] > 0 and served["candidate"] > 0
    version = httpx.get(f"{platform.url}/version", headers={"X-User-ID": "anyone"}).json()
    assert (version["track"], version["app_version"]) == ("stable", "candidate")
    stable = platform.state.processes["stable"]
    assert stable.extra_env == {}, "promotion leaves the canary's extra settings behind"
    assert backend.promote_canary().versions == {"stable": "candidate"}, "idempotent"


def test_blue_green_switch(platform: Platform) -> None:
    platform.cli("deploy", "--track", "blue", "--env", "APP_VERSION=blue-1")
    platform.cli("deploy", "--track", "green", "--env", "APP_VERSION=green-2")
    backend = platform.backend
    try:
        assert backend.switch("blue").active == "blue"
        with httpx.Client() as client:
            assert {platform.answer(u, client).json()["app_version"] for u in USERS[:30]} == {
                "blue-1"
            }
            state = backend.switch("green")
            assert {platform.answer(u, client).json()["app_version"] for u in USERS[:30]} == {
                "green-2"
            }
        assert state.active == "green"
        assert state.weights == {"green": 100.0, "blue": 0.0, "stable": 0.0}
    finally:
        backend.set_canary_weight(0)
        tracks.undeploy(platform.state_dir, track="blue")
        tracks.undeploy(platform.state_dir, track="green")
    assert backend.state().weights == {"stable": 100.0}


def script(module: Any, platform: Platform, *args: str) -> tuple[int, str]:
    """A rollout script in-process against the platform; exit code and its stderr line."""
    err = platform.state_dir.parent / "stderr.txt"
    with err.open("w") as handle, contextlib.redirect_stderr(handle):
        code = module.main(["--platform-dir", str(platform.state_dir), *args])
    return code, err.read_text()


def test_the_documented_blue_green_flow_works_both_ways(platform: Platform) -> None:
    """deploy green, switch to it, roll back to the track before, switch again: each command
    reports the state it leaves, and plain rollback never claims what did not happen."""
    stable = platform.state.processes["stable"].version
    platform.cli("deploy", "--track", "green", "--env", "APP_VERSION=green-2")
    backend = platform.backend
    try:
        code, said = script(promote, platform, "--switch", "green")
        assert code == 0 and "green (green-2) serves all traffic" in said
        assert backend.state().active == "green"
        code, said = script(rollback, platform)
        assert code == 0 and f"rolled back: stable ({stable}) serves all traffic" in said
        assert backend.state().active == "stable"
        code, said = script(rollback, platform)  # idempotent: nothing left to undo
        assert code == 0 and "nothing to roll back" in said
        assert backend.state().active == "stable"
        code, said = script(promote, platform, "--switch", "green")
        assert code == 0 and backend.state().active == "green"
        code, said = script(rollback, platform, "--switch", "stable")
        assert code == 0 and backend.state().active == "stable"
        code, said = script(rollback, platform, "--switch", "blue")
        assert code == 2
        assert "deploy one with `python -m scripts.local_platform deploy --track blue`" in said
    finally:
        backend.switch("stable")
        tracks.undeploy(platform.state_dir, track="green")
    assert backend.state().weights == {"stable": 100.0}


def test_moving_traffic_to_a_missing_canary_names_the_command(platform: Platform) -> None:
    with pytest.raises(ToolkitError) as caught:
        platform.backend.set_canary_weight(20)
    assert "`python -m scripts.local_platform deploy --track canary`" in caught.value.message


def test_down_stops_everything_and_removes_worktrees(tmp_path: Path) -> None:
    platform = start_platform(tmp_path / "state", "--prometheus", "off")
    try:
        code, envelope = platform.cli("deploy", "--track", "canary", "--ref", "HEAD")
        assert code == 0, envelope
        worktree = Path(envelope["data"]["deployed"]["cwd"])
        records = list(platform.state.processes.values())
        stable_url = platform.state.processes["stable"].url
    finally:
        code, down = platform.cli("down")
    assert code == 0
    assert set(down["data"]["stopped"]) >= {"router", "stable", "canary", "model-server"}
    assert not any(pid_running(r.pid, r.identity) for r in records)
    assert not worktree.exists()
    listed = subprocess.run(
        ["git", "worktree", "list"],  # noqa: S607
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    assert str(worktree) not in listed
    assert platform.cli("down") == (
        0,
        {
            "schema_version": 1,
            "status": "down",
            "exit_code": 0,
            "data": {"stopped": [], "removed": [], "was_up": False},
            "errors": [],
        },
    )
    code, status = platform.cli("status")
    assert (code, status["data"]["status"]) == (1, "down")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{stable_url}/healthz", timeout=2)


def test_deploy_without_a_platform_is_a_clear_usage_error(tmp_path: Path) -> None:
    code, envelope = Platform(tmp_path / "none").cli("deploy", "--track", "canary")
    assert code == 2
    assert "python -m scripts.local_platform up" in envelope["errors"][0]


def test_bad_env_and_ref_are_refused(platform: Platform) -> None:
    code, envelope = platform.cli("deploy", "--track", "canary", "--env", "APP_PORT=1")
    assert code == 2 and "set by the platform" in envelope["errors"][0]
    code, envelope = platform.cli("deploy", "--track", "canary", "--ref", "no-such-ref-xyz")
    assert code == 2 and "names no commit" in envelope["errors"][0]
    assert "canary" not in platform.state.processes, "refused before anything started"


def test_interrupted_replacement_is_adopted_or_stopped_by_the_next_operation(
    canary_cleanup: Platform,
) -> None:
    platform = canary_cleanup
    store = StateStore(platform.state_dir)

    def half_deployed() -> ProcessRecord:
        # What `deploy` has done when interrupted before it routes the new instance.
        started = launch.start_app(store.read(), launch.checkout_spec(REPO, "canary"))
        with store.edit() as state:
            state.retiring.append(started)
        return launch.wait_ready(started, 60)

    orphan = half_deployed()
    assert platform.cli("up")[0] == 0
    assert not orphan.running(), "an instance nobody routes to is stopped"
    assert platform.state.retiring == []

    routed = half_deployed()
    # Interrupted after the router was switched, before the state file said so.
    operations.client_for(platform.state).update(
        lambda t: operations.with_backend(t, "canary", routed.url)
    )
    code, envelope = platform.cli("up")
    assert code == 0, envelope
    assert platform.state.processes["canary"].pid == routed.pid, "adopted as the canary"
    assert platform.state.retiring == []


def test_interrupted_promote_finishes_on_rerun_even_with_the_canary_dead(
    canary_cleanup: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform = canary_cleanup
    platform.cli("deploy", "--track", "canary", "--env", "APP_VERSION=rerun-candidate")
    backend = platform.backend
    backend.set_canary_weight(20)

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(operations, "replace_track", interrupted)
        with pytest.raises(KeyboardInterrupt):
            backend.promote_canary()
    assert platform.state.intent is not None, "the promotion is recorded before it acts"
    platform.kill("canary")
    promoted = backend.promote_canary()
    assert promoted.versions == {"stable": "rerun-candidate"}
    assert promoted.weights == {"stable": 100.0}
    assert platform.state.intent is None
    assert httpx.get(f"{platform.url}/version").json()["app_version"] == "rerun-candidate"


def test_failed_up_stops_what_it_started(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    with socket.socket() as taken:  # another program holds the router's port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, envelope = Platform(state_dir).cli("up", "--port", str(port), "--prometheus", "off")
    assert code == 2
    assert f"port {port} is taken" in envelope["errors"][0]
    assert not (state_dir / "state.json").exists()
    started = sorted(p.name for p in (state_dir / "logs").iterdir())
    assert [name.rsplit("-", 1)[0] for name in started] == ["app-stable", "model-server"]
    for log in started:  # what it had started no longer listens
        log_port = log.removesuffix(".log").rsplit("-", 1)[1]
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{log_port}/healthz", timeout=2)


def test_a_pid_is_signalled_only_while_it_names_the_process_started() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        identity = process_identity(child.pid)
        assert identity, "a start time to recognise it by"
        assert stop_pid(child.pid, identity + "0") is False, "another start time: not ours"
        assert child.poll() is None, "left alone"
        assert stop_pid(child.pid, identity) is True
        assert child.wait(5) == -signal.SIGTERM
        assert process_identity(child.pid) is None
    finally:
        child.kill()
        child.wait(5)
