"""Canary analysis over time: read metrics every interval, judge, and (when told) act.

The monitor keeps a small state file so that an interrupted run can be started again and go on
where it stopped: the rollout's start, the current step and when it began, when data was last
read, and the decisions so far. Data are cumulative over the whole rollout, which the
always-valid test allows; each step must still see `min_samples` new canary answers and last
`min_step_seconds` before the canary moves on. Missing data never promotes: the monitor holds,
and rolls back once data have been missing for `max_missing_seconds`; a step still undecided
after `max_step_seconds` rolls back too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from contract.files import atomic_write
from contract.tracks import Track
from scripts.toolkit.cli import EXIT_INCONCLUSIVE, ToolkitError
from scripts.toolkit.judge import Decision, Judgement, estimate, judge
from scripts.toolkit.metrics import MetricsUnavailable, ResumableSource
from scripts.toolkit.metrics.factory import SourceFactory
from scripts.toolkit.policy import Policy
from scripts.toolkit.targets import RolloutOutcome, RolloutTarget


@dataclass
class RolloutState:
    """What the monitor remembers between checks and across restarts."""

    target: dict[str, Any]
    started_at: float
    step: float
    step_started_at: float
    step_baseline: dict[str, float] | None = None
    last_data_at: float | None = None
    checks: int = 0
    final: RolloutOutcome | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    source_state: dict[str, Any] | None = None  # a scrape source's counts, to resume with them

    @classmethod
    def load(cls, path: Path | None) -> RolloutState | None:
        """The saved state, if any (a corrupt file is an error: it says what to do)."""
        if path is None or not path.is_file():
            return None
        try:
            state = cls(**json.loads(path.read_text(encoding="utf-8")))
            state.final = RolloutOutcome(state.final) if state.final is not None else None
            return state
        except (ValueError, TypeError) as exc:
            raise ToolkitError(
                f"{path} is not a monitor state file; delete it to start over."
            ) from exc

    def save(self, path: Path | None) -> None:
        """Write atomically, so an interruption leaves the old or the new state."""
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(asdict(self), indent=2))


@dataclass
class CheckResult:
    """One check: the decision, why, the judge's verdict and what was done about it."""

    decision: Decision
    reasons: list[str]
    step: float
    seconds_in_step: float
    verdict: Judgement | None = None
    action: str | None = None
    at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "decision": self.decision,
            "reasons": self.reasons,
            "step": self.step,
            "seconds_in_step": round(self.seconds_in_step, 1),
            "action": self.action,
            "at": self.at,
            "verdict": self.verdict.to_dict() if self.verdict else None,
        }


class Monitor:
    """Judges a canary every `interval_seconds`; with `act`, steps forward or rolls back.

    `source` builds the metric source for a rollout that started at a given time (Prometheus
    reads from then on); a resumed rollout keeps its start and gives a resumable source back
    what it had counted, so no data from before an interruption is lost."""

    def __init__(
        self,
        policy: Policy,
        target: RolloutTarget,
        source: SourceFactory,
        *,
        act: bool,
        state_file: Path | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.policy = policy
        self.target = target
        self.act = act
        self.state_file = state_file
        self.clock = clock
        self.sleep = sleep
        now = clock()
        saved = RolloutState.load(state_file)
        identity = target.identity()
        if saved is not None and (
            saved.target.get("identity") == identity.to_dict()
            # nothing rolls out any more: report how the saved rollout ended
            or (saved.final is not None and identity.candidate is None)
        ):
            # The same rollout (interrupted, or already ended): go on from where it was.
            self.state = saved
        else:
            self.state = RolloutState(
                target={"identity": identity.to_dict(), **target.describe()},
                started_at=now,
                step=-1.0,
                step_started_at=now,
            )
        self.queries = [m.query() for m in policy.metrics]
        self.source = source(self.state.started_at)
        if isinstance(self.source, ResumableSource) and self.state.source_state is not None:
            try:
                self.source.restore(self.state.source_state)
            except ValueError as exc:
                raise ToolkitError(f"{self.state_file}: {exc}; delete it to start over.") from exc

    def check(self) -> CheckResult:
        """Read, judge, decide, and act when told to."""
        now = self.clock()
        state = self.state
        if state.final is not None:
            promoted = state.final is RolloutOutcome.PROMOTED
            decision: Decision = "promote" if promoted else "rollback"
            return CheckResult(
                decision,
                [f"this rollout was already {state.final}"],
                state.step,
                now - state.step_started_at,
                action=f"already {state.final}",
                at=now,
            )
        step = self.target.canary_percent()
        if step <= 0 and self.act and state.step < 0:
            # A fresh rollout: the canary is deployed with no traffic; start the first step.
            self.target.set_percent(self.policy.steps[0])
            step = state.step = self.policy.steps[0]
            state.step_started_at = now
        if step <= 0:
            raise ToolkitError(
                "the canary serves no traffic; start it with `python -m scripts.promote --to next` "
                "or run the monitor with --act."
            )
        if step != state.step:
            # A step this monitor did not start (a fresh monitor on a canary moved by hand)
            # counts every answer since the canary was deployed; a step it set, only new ones.
            baseline: dict[str, float] | None = {} if state.step < 0 else None
            state.step, state.step_started_at, state.step_baseline = step, now, baseline
        state.checks += 1
        in_step = now - state.step_started_at
        decision, reasons, verdict = self._decide(now, step, in_step)
        if decision == "hold" and in_step > self.policy.max_step_seconds:
            decision = "rollback"
            reasons = [
                f"still undecided after {in_step:.0f} s at {step:g}% "
                f"(limit {self.policy.max_step_seconds:.0f} s)",
                *reasons,
            ]
        result = CheckResult(decision, reasons, step, in_step, verdict, at=now)
        if self.act:
            result.action = self._act(decision, step, now)
        state.history.append({k: v for k, v in result.to_dict().items() if k != "verdict"})
        del state.history[:-200]
        state.save(self.state_file)
        return result

    def _decide(
        self, now: float, step: float, in_step: float
    ) -> tuple[Decision, list[str], Judgement | None]:
        """Read both arms and judge them; missing data holds, then rolls back."""
        state = self.state
        try:
            data = self.source.read(self.queries, self.target.arms())
        except MetricsUnavailable as exc:
            since = state.last_data_at if state.last_data_at is not None else state.started_at
            missing = now - since
            if missing > self.policy.max_missing_seconds:
                return (
                    "rollback",
                    [
                        f"metrics unavailable for {missing:.0f} s, over the "
                        f"{self.policy.max_missing_seconds:.0f} s limit: {exc.message}"
                    ],
                    None,
                )
            return "hold", [f"metrics unavailable ({missing:.0f} s): {exc.message}"], None
        state.last_data_at = now
        if isinstance(self.source, ResumableSource):
            state.source_state = self.source.export_state()
        verdict = judge(self.policy, data[Track.STABLE], data[Track.CANARY])
        if step >= 100 and verdict.decision == "hold":
            self._stuck_at_full(verdict)
        decision, reasons = verdict.decision, list(verdict.reasons)
        counts = {m: estimate(o).n for m, o in data[Track.CANARY].items()}
        if state.step_baseline is None:
            state.step_baseline = counts
        if decision == "hold" and verdict.no_harm and not self.policy.needs_evidence(step):
            # Fail fast, promote on evidence: early steps move on when nothing is worse than
            # allowed; the full pass is asked where the canary has the data for it.
            decision = "promote"
            reasons = [
                "no critical metric worse than allowed (a full pass is required "
                f"from {self.policy.evidence_step:g}%)"
            ]
        if decision == "promote":
            decision, reasons = self._gate_step(counts, in_step, reasons)
        return decision, reasons, verdict

    def _stuck_at_full(self, verdict: Judgement) -> None:
        """At 100% stable gets no more traffic: if it has too few samples to compare, waiting
        cannot help, so say so (exit 3) and what to do instead of holding until the limit."""
        needed = {m.name: self.policy.samples_needed(m) for m in self.policy.metrics}
        short = [m for m in verdict.metrics if m.critical and m.stable_n < needed[m.name]]
        if short:
            raise ToolkitError(
                f"the canary serves 100% and stable has {short[0].stable_n:.0f} samples of "
                f"{short[0].name}, too few to compare and none more to come; finish with "
                "`python -m scripts.promote --to full` or undo with `python -m scripts.rollback`.",
                exit_code=EXIT_INCONCLUSIVE,
            )

    def _gate_step(
        self, counts: dict[str, float], in_step: float, reasons: list[str]
    ) -> tuple[Decision, list[str]]:
        """Promotion also needs enough new canary answers and time at this step."""
        baseline = self.state.step_baseline or {}
        short = []
        for metric in self.policy.metrics:
            if not metric.critical:
                continue
            new = counts.get(metric.name, 0.0) - baseline.get(metric.name, 0.0)
            need = self.policy.samples_needed(metric)
            if new < need:
                short.append(f"{metric.name}: {new:.0f} of {need} new canary samples at this step")
        if short:
            return "hold", short
        if in_step < self.policy.min_step_seconds:
            return "hold", [
                f"at this step for {in_step:.0f} s of {self.policy.min_step_seconds:.0f} s"
            ]
        return "promote", reasons

    def _act(self, decision: Decision, step: float, now: float) -> str | None:
        state = self.state
        if decision == "rollback":
            self.target.rollback()
            state.final = RolloutOutcome.ROLLED_BACK
            return state.final.value
        if decision != "promote":
            return None
        if step >= 100:
            self.target.finish()
            state.final = RolloutOutcome.PROMOTED
            return state.final.value
        following = self.policy.next_step(step)
        self.target.set_percent(following)
        state.step, state.step_started_at, state.step_baseline = following, now, None
        return f"stepped to {following:g}%"

    def run(
        self,
        *,
        duration: float | None,
        once: bool,
        on_check: Callable[[CheckResult], None] | None = None,
    ) -> CheckResult:
        """Check every interval until a final action (with `act`), a decision other than hold
        (without), `once`, or `duration` seconds; returns the last check."""
        deadline = None if duration is None else self.clock() + duration
        while True:
            result = self.check()
            if on_check is not None:
                on_check(result)
            if once or self.state.final is not None:
                return result
            if not self.act and result.decision != "hold":
                return result
            if deadline is not None and self.clock() + self.policy.interval_seconds > deadline:
                return result
            self.sleep(self.policy.interval_seconds)
