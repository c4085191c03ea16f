"""The monitor's state machine on known data: steps, time limits, missing data, resuming."""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from contract.files import REPO_ROOT
from scripts import monitor_canary
from scripts.toolkit import registry_ops
from scripts.toolkit.cli import EXIT_INCONCLUSIVE, ToolkitError
from scripts.toolkit.judge import UNITS
from scripts.toolkit.metrics.factory import fixed_source
from scripts.toolkit.monitor import Monitor, RolloutState
from scripts.toolkit.policy import DEFAULT_POLICY, Policy, load_policy
from scripts.toolkit.processes import free_port
from scripts.toolkit.registry_store import FolderStore
from scripts.toolkit.targets import CodeTarget, PromptTarget
from scripts.toolkit.traffic.base import TrafficState
from tests.support.registry import add_prompt
from tests.support.synthetic import FakeClock, ScriptedSource, arm, unavailable


def fast_policy(**overrides: object) -> Policy:
    """The repository's policy with a quick clock: steps 10/50/100, 1 s interval."""
    settings = {
        "interval_seconds": 1,
        "min_step_seconds": 5,
        "max_step_seconds": 60,
        "max_missing_seconds": 10,
        "min_samples": 100,
        "steps": [10, 50, 100],
    }
    return load_policy(DEFAULT_POLICY, **{**settings, **overrides})


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    """A registry copy whose prompt rag_answer has v2 as a 10% canary."""
    target = tmp_path / "registry"
    shutil.copytree(REPO_ROOT / "registry", target)
    add_prompt(target, "rag_answer", "v2", status="retired", traffic_percentage=0)
    registry_ops.start_canary(target, "rag_answer", "v2", 10)
    return target


def growing(
    canary: dict[str, float],
    *,
    checks: int = 60,
    per_check: int = 300,
    stable: dict[str, float] | None = None,
) -> list:
    """Cumulative readings: every check adds `per_check` answers, split 10/90 at first."""
    readings = []
    for i in range(1, checks + 1):
        readings.append((arm(per_check * i, **(stable or {})), arm(per_check * i * 0.5, **canary)))
    return readings


def monitor(
    registry: Path,
    source: ScriptedSource,
    clock: FakeClock,
    state: Path | None = None,
    policy: Policy | None = None,
    *,
    act: bool = True,
) -> Monitor:
    """A monitor on the prompt canary with a fake clock."""
    target = PromptTarget(store=FolderStore(registry), prompt="rag_answer", urls=["http://unused"])
    return Monitor(
        policy or fast_policy(),
        target,
        fixed_source(source),
        act=act,
        state_file=state,
        clock=clock,
        sleep=clock.sleep,
    )


def production(registry: Path) -> registry_ops.PromptRollout:
    """The prompt's versions as the registry says."""
    return registry_ops.rollout_state(registry, "rag_answer")


def test_a_good_canary_goes_through_every_step_and_is_promoted(registry: Path) -> None:
    clock = FakeClock()
    run = monitor(registry, ScriptedSource(growing({})), clock)
    steps: list[float] = []
    result = run.run(duration=None, once=False, on_check=lambda r: steps.append(r.step))
    assert result.action == "promoted"
    assert production(registry).production == "v2"
    assert production(registry).canary is None
    assert sorted(set(steps)) == [10.0, 50.0, 100.0]
    # Never left a step before min_step_seconds (5 checks of 1 s).
    for step in (10.0, 50.0):
        assert steps.count(step) >= 5


def test_an_erroring_canary_is_rolled_back_with_the_failing_metric_named(registry: Path) -> None:
    clock = FakeClock()
    run = monitor(registry, ScriptedSource(growing({"error_rate": 0.2})), clock)
    result = run.run(duration=None, once=False)
    assert result.action == "rolled back"
    assert any(r.startswith("error_rate") for r in result.reasons)
    assert production(registry).canary is None
    assert production(registry).production == "v1"


def test_a_quality_drop_is_rolled_back(registry: Path) -> None:
    clock = FakeClock()
    run = monitor(registry, ScriptedSource(growing({"quality": 0.25})), clock)
    result = run.run(duration=None, once=False)
    assert result.action == "rolled back"
    assert any(r.startswith("quality_score") for r in result.reasons)


def test_too_little_data_holds_and_never_promotes(registry: Path) -> None:
    clock = FakeClock()
    tiny = [(arm(50), arm(5))] * 3
    run = monitor(registry, ScriptedSource(tiny), clock)
    for _ in range(3):
        result = run.check()
        assert result.decision == "hold"
        clock.sleep(1)
    assert any("samples" in m.reason for m in result.verdict.metrics)  # type: ignore[union-attr]
    assert production(registry).canary_percentage == 10


def test_missing_metrics_hold_then_roll_back_after_the_limit(registry: Path) -> None:
    clock = FakeClock()
    run = monitor(registry, ScriptedSource([unavailable()]), clock)
    first = run.check()
    assert first.decision == "hold"
    assert "unavailable" in first.reasons[0]
    assert production(registry).canary == "v2"
    result = run.run(duration=None, once=False)
    assert result.action == "rolled back"
    assert "over the 10 s limit" in result.reasons[0]
    assert clock.now - run.state.started_at > 10


def test_a_step_short_of_samples_moves_on_after_max_step_seconds_without_harm(
    registry: Path,
) -> None:
    # 3 canary answers a second: the 10% step never sees its 100 new ones; nothing is worse.
    clock = FakeClock()
    policy = fast_policy(max_step_seconds=8, min_samples=100)
    readings = [(arm(27 * i), arm(3 * i)) for i in range(1, 100)]
    run = monitor(registry, ScriptedSource(readings), clock, policy=policy)
    seen = []
    while run.state.step < 50 and len(seen) < 20:
        seen.append(run.check())
        clock.sleep(1)
    assert all(r.decision != "rollback" for r in seen)
    assert seen[-1].decision == "promote"
    assert seen[-1].reasons[0].startswith("10%: moved on with fewer than 100 canary answers")
    assert "no harm shown in" in seen[-1].reasons[0]


def test_without_act_the_monitor_only_reports(registry: Path) -> None:
    clock = FakeClock()
    run = monitor(registry, ScriptedSource(growing({"error_rate": 0.2})), clock, act=False)
    result = run.run(duration=None, once=False)
    assert result.decision == "rollback"
    assert result.action is None
    assert production(registry).canary == "v2"


def test_an_interrupted_monitor_resumes_where_it_stopped(registry: Path, tmp_path: Path) -> None:
    clock = FakeClock()
    state = tmp_path / "state.json"
    readings = growing({})
    first = monitor(registry, ScriptedSource(readings), clock, state)
    while first.state.step < 50:
        first.check()
        clock.sleep(1)
    started = first.state.started_at
    checks = first.state.checks
    # A new process picks up the saved state: same rollout start, same step, count goes on.
    second = monitor(registry, ScriptedSource(readings[checks:]), clock, state)
    assert second.state.started_at == started
    assert second.state.step == 50
    result = second.run(duration=None, once=False)
    assert result.action == "promoted"
    assert second.state.checks > checks
    # Running it once more after the end reports the outcome and changes nothing.
    third = monitor(registry, ScriptedSource(readings), clock, state)
    again = third.check()
    assert again.action == "already promoted"
    assert production(registry).production == "v2"


def test_a_corrupt_state_file_says_what_to_do(registry: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text("{not json", encoding="utf-8")
    with pytest.raises(ToolkitError, match="delete it to start over"):
        RolloutState.load(state)


def test_no_canary_traffic_without_act_is_a_usage_error(registry: Path) -> None:
    registry_ops.rollback(registry, "rag_answer")
    add_prompt(registry, "rag_answer", "v2-no-context", status="retired", traffic_percentage=0)
    clock = FakeClock()
    run = monitor(registry, ScriptedSource(growing({})), clock, act=False)
    with pytest.raises(ToolkitError, match="no traffic"):
        run.check()


@pytest.mark.parametrize("on_insufficient_data", ["promote", "hold"])
def test_early_steps_move_on_without_harm_and_the_evidence_step_waits_for_a_pass(
    registry: Path, on_insufficient_data: str
) -> None:
    # Quality 0.04 lower: within the 0.05 margin, but with these samples never shown to be.
    clock = FakeClock()
    policy = fast_policy(
        max_step_seconds=30, max_evidence_seconds=40, on_insufficient_data=on_insufficient_data
    )
    assert policy.evidence_step == 50
    readings = [(arm(400 * i), arm(80 * i, quality=0.59)) for i in range(1, 200)]
    run = monitor(registry, ScriptedSource(readings), clock, policy=policy)
    seen: list[tuple[float, str]] = []
    result = run.run(duration=120, once=False, on_check=lambda r: seen.append((r.step, r.decision)))
    # 10% moved on with nothing failing; 50% never got its full pass, and after its time
    # limit did what the policy says: never a rollback.
    assert (10.0, "promote") in seen
    assert "rollback" not in [decision for _, decision in seen]
    at_50 = [decision for step, decision in seen if step == 50.0]
    if on_insufficient_data == "hold":
        assert set(at_50) == {"hold"}
        assert "on_insufficient_data: hold" in result.reasons[0]
        assert production(registry).canary == "v2"
    else:
        assert at_50[-1] == "promote" and set(at_50[:-1]) == {"hold"}
        assert result.action == "promoted"
        assert run.state.notes[-1].startswith("50%: promoted without evidence of non-inferiority")


class RememberingSource(ScriptedSource):
    """A scripted source that, like ScrapeSource, has state to save and restore."""

    restored: dict | None = None

    def export_state(self) -> dict:
        """What a real source would remember: here, how many readings it served."""
        return {"calls": self.calls}

    def restore(self, state: dict) -> None:
        """Take the saved state back."""
        self.restored = state


def test_a_resumed_monitor_gives_its_source_back_what_it_had_counted(
    registry: Path, tmp_path: Path
) -> None:
    clock = FakeClock()
    state = tmp_path / "state.json"
    first = monitor(registry, RememberingSource(growing({})), clock, state)
    for _ in range(3):
        first.check()
        clock.sleep(1)
    saved = RolloutState.load(state)
    assert saved is not None
    assert saved.source_state == {"calls": 3}
    source = RememberingSource(growing({}))
    monitor(registry, source, clock, state)
    assert source.restored == {"calls": 3}
    # A fresh rollout (no saved state) restores nothing.
    fresh = RememberingSource(growing({}))
    monitor(registry, fresh, clock, tmp_path / "other.json")
    assert fresh.restored is None


def test_a_fresh_monitor_on_a_canary_moved_by_hand_counts_what_it_served_before(
    registry: Path,
) -> None:
    # The canary has served 2,181 answers at 10% before any monitor ran; few arrive now.
    clock = FakeClock()
    readings = [(arm(20_000 + 50 * i), arm(2_181 + 5 * i)) for i in range(1, 40)]
    run = monitor(registry, ScriptedSource(readings), clock)
    seen = []
    while run.state.step < 50 and len(seen) < 10:
        seen.append(run.check())
        clock.sleep(1)
    assert run.state.step == 50, [r.reasons for r in seen]
    assert not any("0 of" in reason for r in seen for reason in r.reasons)


def test_at_full_traffic_a_stable_arm_without_samples_says_what_to_do(registry: Path) -> None:
    registry_ops.set_canary_percentage(registry, "rag_answer", 100)
    clock = FakeClock()
    run = monitor(registry, ScriptedSource([(arm(5), arm(3_000))]), clock)
    with pytest.raises(ToolkitError) as caught:
        run.check()
    assert caught.value.exit_code == EXIT_INCONCLUSIVE
    assert "promote --to full" in caught.value.message
    assert "scripts.rollback" in caught.value.message


def test_duration_running_out_mid_rollout_is_unfinished_not_done(
    registry: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    policy = tmp_path / "policy.yaml"
    data = yaml.safe_load(DEFAULT_POLICY.read_text(encoding="utf-8"))
    data.update(steps=[10, 50, 100], min_samples=100)
    policy.write_text(yaml.safe_dump(data), encoding="utf-8")
    source = ScriptedSource(growing({}))
    monkeypatch.setattr(monitor_canary, "source_factory", lambda *_, **__: fixed_source(source))
    state = tmp_path / "state.json"
    code = monitor_canary.main(
        [
            "--target", "prompt", "--registry-dir", str(registry), "--policy", str(policy),
            "--act", "--duration", "1.5", "--interval", "1", "--min-step-seconds", "1",
            "--state-file", str(state), "--stable-url", "http://unused", "--output", "json",
        ]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == EXIT_INCONCLUSIVE
    assert json.loads(captured.out)["status"] == "unfinished"
    assert "run the same command again to resume" in captured.err
    assert production(registry).canary == "v2"  # stepped forward, not finished


class RecordingBackend:
    """The toolkit's own TrafficBackend interface over a dict: what was asked, nothing else."""

    name = "recording"

    def __init__(self) -> None:
        self.traffic = TrafficState({"stable": 100.0, "canary": 0.0}, {"canary": "v2"})
        self.calls: list[str] = []

    def state(self) -> TrafficState:
        return self.traffic

    def set_canary_weight(self, percent: float, *, per_request: bool = False) -> TrafficState:
        self.calls.append(f"weight {percent:g} per_request={per_request}")
        weights = {"stable": 100.0 - percent, "canary": percent}
        self.traffic = TrafficState(weights, {"canary": "v2"})
        return self.traffic

    def rollback_canary(self) -> TrafficState:
        self.calls.append("rollback")
        self.traffic = TrafficState({"stable": 100.0})
        return self.traffic

    def promote_canary(self) -> TrafficState:
        raise AssertionError("a dead canary is never promoted")

    def switch(self, track: str) -> TrafficState:
        raise AssertionError(track)

    def switch_back(self) -> TrafficState:
        raise AssertionError("switch_back")


def test_a_canary_that_refuses_every_connection_is_rolled_back_at_the_second_check() -> None:
    """No traffic needed: at 1 answer/s a 5% canary sees one request in 20 s, far too few for
    its error rate to decide quickly, but a probe of its instances finds it dead at once."""
    clock = FakeClock()
    backend = RecordingBackend()
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    target = CodeTarget(backend=backend, canary_urls=[dead])
    quiet = ScriptedSource([(arm(0), arm(0))])  # no answers on either arm
    run = Monitor(
        fast_policy(), target, fixed_source(quiet), act=True, clock=clock, sleep=clock.sleep
    )
    first = run.check()
    assert first.decision == "hold"
    second = run.check()
    assert second.decision == "rollback"
    assert second.action == "rolled back"
    assert "refuses connections" in second.reasons[0]
    assert backend.calls == ["weight 10 per_request=True", "rollback"]


def test_a_canary_that_answers_is_not_taken_for_dead() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)  # answers 501
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        alive = f"http://127.0.0.1:{server.server_address[1]}"
        assert CodeTarget(backend=RecordingBackend(), canary_urls=[alive]).canary_down() is None
    finally:
        server.shutdown()
        server.server_close()
    assert CodeTarget(backend=RecordingBackend()).canary_down() is None  # no URL known


def test_a_sticky_code_canary_reads_the_users_count_and_says_when_it_has_none() -> None:
    """With code_assignment: user the monitor asks the source for the users count (the judge's
    unit); a service that has none (zeros) is judged per answer, and the record says so."""
    clock = FakeClock()
    backend = RecordingBackend()
    source = ScriptedSource([(arm(3000), arm(300))])  # no UNITS among the observations
    run = Monitor(
        fast_policy(code_assignment="user"),
        CodeTarget(backend=backend),
        fixed_source(source),
        act=True,
        clock=clock,
        sleep=clock.sleep,
    )
    assert UNITS in [q.name for q in run.queries]
    run.check()
    assert backend.calls == ["weight 10 per_request=False"]
    assert any("judged per answer" in note for note in run.state.notes)
    target = CodeTarget(backend=RecordingBackend())
    per_request = Monitor(fast_policy(), target, fixed_source(source), act=False, clock=clock)
    assert UNITS not in [q.name for q in per_request.queries]
