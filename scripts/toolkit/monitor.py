"""Canary analysis over time: read metrics every interval, judge, and (when told) act.

The monitor keeps a small state file so that an interrupted run can be started again and go on
where it stopped: the rollout's start, the current step and the counts of both arms when each
step began (the judge compares the arms within each step, `judge.py`), the measured traffic and
the rollout plan it implies, and the checks so far (per critical metric the intervals a chart
draws). During the first step it checks every `fast_interval_seconds` with the exact tests
only, so a catastrophe is rolled back after a handful of answers; every `interval_seconds` it
judges everything. An early step moves on when nothing is worse than allowed after
`min_samples` new canary answers, or after `max_step_seconds` with fewer; the evidence step
waits for a full pass up to `max_evidence_seconds`. A step whose time is up with no harm shown
does what `on_insufficient_data` says (promote, recorded as such, or hold): too little data is
never a reason to roll back. Reaching 100% after the evidence step finishes. Missing data never
promotes: the monitor holds, and rolls back once data have been missing `max_missing_seconds`.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from contract.files import atomic_write
from contract.metrics import ANSWERS, EXPERIMENT_UNITS
from contract.tracks import Track
from scripts.toolkit.analysis import margin
from scripts.toolkit.cli import EXIT_INCONCLUSIVE, ToolkitError
from scripts.toolkit.judge import (
    UNITS,
    Decision,
    Judgement,
    Stratum,
    critical_tests,
    estimate,
    judge,
)
from scripts.toolkit.metrics import (
    ArmData,
    MetricQuery,
    MetricsUnavailable,
    Ratio,
    ResumableSource,
    Selector,
    observation_from,
)
from scripts.toolkit.metrics.factory import SourceFactory
from scripts.toolkit.policy import Policy
from scripts.toolkit.targets import RolloutOutcome, RolloutTarget

# A canary that refuses every connection at this many checks in a row is rolled back, however
# little traffic it gets (two: one refused probe may be a restart in progress).
CANARY_DOWN_CHECKS = 2


@dataclass
class RolloutState:
    """What the monitor remembers between checks and across restarts."""

    target: dict[str, Any]
    started_at: float
    step: float
    step_started_at: float
    # Both arms' counts when each step began (None: at the next reading): the judge's strata.
    bounds: list[dict[str, dict[str, Any]] | None] = field(default_factory=list)
    step_bound: int = -1  # the bound at which the current step began (later ones: restarts)
    moved: bool = False  # this monitor set the current step (so 100% after evidence: finish)
    judged_at: float | None = None  # the last full judgement (fast checks run in between)
    traffic: list[float] | None = None  # [time, answers of both arms] at the first reading
    rate: float | None = None  # answers per second, both arms, measured since then
    plan: list[dict[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the decision record must say
    last_data_at: float | None = None
    checks: int = 0
    down_checks: int = 0  # checks in a row at which the canary refused every connection
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
            saved.target.get("identity") == asdict(identity)
            # nothing rolls out any more: report how the saved rollout ended
            or (saved.final is not None and identity.candidate is None)
        ):
            # The same rollout (interrupted, or already ended): go on from where it was.
            self.state = saved
        else:
            self.state = RolloutState(
                target={"identity": asdict(identity), **target.describe()},
                started_at=now,
                step=-1.0,
                step_started_at=now,
            )
        self.queries = [m.query() for m in policy.metrics]
        if policy.code_assignment == "user" and target.kind == "code":
            # Sticky by user: the judge counts users, not answers (judge.UNITS).
            units = (Selector(EXPERIMENT_UNITS),), (Selector(ANSWERS),)
            self.queries.append(MetricQuery(UNITS, "ratio", hits=units[0], total=units[1]))
        self._reading: dict[str, dict[str, Any]] = {}  # this check's counts, as bounds keep them
        self.source = source(self.state.started_at)
        if isinstance(self.source, ResumableSource) and self.state.source_state is not None:
            try:
                self.source.restore(self.state.source_state)
            except ValueError as exc:
                raise ToolkitError(f"{self.state_file}: {exc}; delete it to start over.") from exc

    @property
    def _per_request(self) -> bool:
        """Code canaries assign each request by chance when the policy says so (few users)."""
        return self.policy.code_assignment == "request" and self.target.kind == "code"

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
            self.target.set_percent(self.policy.steps[0], per_request=self._per_request)
            step = state.step = self.policy.steps[0]
            state.step_started_at, state.bounds, state.moved = now, [None], True
            state.step_bound = 0
        if step <= 0:
            raise ToolkitError(
                "the canary serves no traffic; start it with `python -m scripts.promote --to next` "
                "or run the monitor with --act."
            )
        if step != state.step:
            # A step this monitor did not set: a fresh monitor counts every answer since the
            # canary was deployed; a step moved by hand later starts at this reading.
            state.bounds.append({} if state.step < 0 else None)
            state.step_bound = len(state.bounds) - 1
            state.step, state.step_started_at, state.moved = step, now, False
        state.checks += 1
        in_step = now - state.step_started_at
        decision, reasons, verdict = self._decide(now, step, in_step)
        down = self.target.canary_down()
        state.down_checks = state.down_checks + 1 if down else 0
        if down and state.down_checks >= CANARY_DOWN_CHECKS:
            judged = reasons if decision == "rollback" else []
            decision = "rollback"
            reasons = [*judged, f"{down}, at {state.down_checks} checks in a row"]
        result = CheckResult(decision, reasons, step, in_step, verdict, at=now)
        if self.act:
            result.action = self._act(decision, step, now)
        entry = {k: v for k, v in result.to_dict().items() if k != "verdict"}
        if verdict is not None:
            entry["metrics"] = {m.name: m.chart() for m in verdict.metrics if m.critical}
        state.history.append(entry)
        del state.history[:-500]
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
            missing, limit = now - since, self.policy.max_missing_seconds
            if missing <= limit:
                return "hold", [f"metrics unavailable ({missing:.0f} s): {exc.message}"], None
            reason = f"metrics unavailable for {missing:.0f} s, over the {limit:.0f} s limit: "
            return "rollback", [reason + exc.message], None
        state.last_data_at = now
        if isinstance(self.source, ResumableSource):
            state.source_state = self.source.export_state()
        arms = (data[Track.STABLE], data[Track.CANARY])
        unknown = "sticky assignment judged per answer: the service exports no users count"
        sticky = any(q.name == UNITS for q in self.queries)
        counted = arms[1].get(UNITS)
        none = counted is None or (isinstance(counted, Ratio) and counted.hits == 0 < counted.total)
        if sticky and none and unknown not in state.notes:
            state.notes.append(unknown)  # with few users, false rollbacks can exceed alpha
        self._reading = {
            a: {m: asdict(o) for m, o in d.items()} for a, d in zip("sc", arms, strict=True)
        }
        if state.bounds[-1] is None:
            state.bounds[-1] = self._reading
        self._measure(now, arms)
        cuts = [
            {a: {m: observation_from(o) for m, o in d.items()} for a, d in (b or {}).items()}
            for b in state.bounds
        ]
        cuts.append({"s": arms[0], "c": arms[1]})
        strata: list[Stratum] = [
            (_since(now_["s"], then.get("s", {})), _since(now_["c"], then.get("c", {})))
            for then, now_ in itertools.pairwise(cuts)
        ]
        # The sample ratio needs a reading of the step's start (not a canary found moved before
        # this monitor, nor a first reading in which stable's series were not there yet).
        per_request = self._per_request and _count(self.policy, cuts[-2].get("s", {})) > 0
        full = state.judged_at is None or now - state.judged_at >= self.policy.interval_seconds
        # The whole step (the strata since it began), for the share test: it runs over the
        # step, never restarted, so a restart below is not another look at its alpha.
        begun = cuts[state.step_bound] if 0 <= state.step_bound < len(cuts) - 1 else cuts[-2]
        whole = (_since(arms[0], begun.get("s", {})), _since(arms[1], begun.get("c", {})))
        verdict = judge(
            self.policy,
            *strata[-1],
            earlier=strata[:-1],
            weight=step / 100 if per_request else None,
            fast=not full,
            step=whole,
        )
        if any(m.degraded for m in verdict.metrics):
            # The limit tests start again after the platform's trouble, so an outage both arms
            # had does not linger in the canary's evidence once stable has recovered.
            state.bounds.append(self._reading)
        if step >= 100 and state.moved:  # the verdict is for the record: stable has no traffic
            reached = f"reached 100% after the {self.policy.evidence_step:g}% step"
            return "promote", [reached], verdict
        if verdict.decision == "rollback" or not full:
            return verdict.decision, list(verdict.reasons), verdict
        state.judged_at = now
        self._plan(arms[0])
        if step >= 100 and verdict.decision == "hold":
            self._stuck_at_full(verdict)
        decision, reasons = self._gate(verdict, step, in_step, _count(self.policy, strata[-1][1]))
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

    def _gate(
        self, verdict: Judgement, step: float, in_step: float, new: float
    ) -> tuple[Decision, list[str]]:
        """What the step does with a full judgement that rolls nothing back: `new` canary
        answers at this step, `in_step` seconds."""
        policy = self.policy
        evidence = policy.needs_evidence(step)
        early = verdict.no_harm and not evidence and new >= policy.min_samples
        if verdict.decision == "promote" or early:
            if in_step < policy.min_step_seconds:
                return "hold", [
                    f"at this step for {in_step:.0f} s of {policy.min_step_seconds:.0f} s"
                ]
            if verdict.decision == "promote":
                return "promote", list(verdict.reasons)
            return "promote", [
                f"no critical metric worse than allowed in {new:.0f} canary answers (a full pass "
                f"is required from {policy.evidence_step:g}%)"
            ]
        limit = policy.evidence_seconds if evidence else policy.max_step_seconds
        if not verdict.no_harm or in_step < limit:
            return "hold", list(verdict.reasons)
        shown = f"no harm shown in {new:.0f} canary answers over {in_step:.0f} s"
        note = (
            f"{step:g}%: promoted without evidence of non-inferiority: {shown}"
            if evidence
            else f"{step:g}%: moved on with fewer than {policy.min_samples} canary answers: {shown}"
        )
        if policy.on_insufficient_data == "hold":
            return "hold", [f"{note}; holding (on_insufficient_data: hold): decide by hand"]
        if self.act:
            self.state.notes.append(note)
        return "promote", [note]

    def _measure(self, now: float, arms: tuple[ArmData, ArmData]) -> None:
        """The traffic, answers per second of both arms, since the first reading."""
        answers = _count(self.policy, arms[0]) + _count(self.policy, arms[1])
        state = self.state
        if state.traffic is None:
            state.traffic = [now, answers]
        elif now > state.traffic[0]:
            state.rate = (answers - state.traffic[1]) / (now - state.traffic[0])

    def _plan(self, stable: ArmData) -> None:
        """Per step at the measured traffic: canary answers per second, the answers the step
        waits for (its `min_samples`, or at the evidence step about what a full pass takes at
        stable's spread) and the seconds that takes within the step's limits."""
        policy, rate = self.policy, self.state.rate
        if not rate or rate <= 0:
            return
        alpha = policy.alpha / critical_tests(policy)
        plan = []
        for step in policy.steps:
            share = min(step, 99.0) / 100
            need, cap = float(policy.min_samples), policy.max_step_seconds
            if policy.needs_evidence(step):
                cap = policy.evidence_seconds
                for metric in policy.metrics:
                    if metric.critical and metric.name in stable:
                        e = estimate(stable[metric.name])
                        allowed = margin(metric, e.mean) or math.inf
                        # a pass needs the interval's radius under about 0.7 of the margin
                        variance = (0.7 * allowed) ** 2 / (2 * math.log(1 / alpha) + 2)
                        need = max(need, e.variance * e.n / ((1 - share) * variance))
            seconds = (
                min(max(need / (rate * share), policy.min_step_seconds), cap) if step < 100 else 0.0
            )
            plan.append(
                {
                    "step": step,
                    "canary_per_second": rate * step / 100,
                    "samples": rate * share * seconds,
                    "seconds": seconds,
                }
            )
        self.state.plan = plan

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
        self.target.set_percent(following, per_request=self._per_request)
        state.step, state.step_started_at, state.moved = following, now, True
        state.bounds.append(self._reading)
        state.step_bound = len(state.bounds) - 1
        return f"stepped to {following:g}%"

    def next_interval(self) -> float:
        """Seconds to the next check: fast during the first step."""
        first = self.state.step == self.policy.steps[0]
        return self.policy.fast_interval if first else self.policy.interval_seconds

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
            if deadline is not None and self.clock() + self.next_interval() > deadline:
                return result
            self.sleep(self.next_interval())


def _since(now: ArmData, then: ArmData) -> ArmData:
    """What each metric counted since `then` (all of it when `then` has no count for it)."""
    return {m: o.minus(then[m]) if m in then else o for m, o in now.items()}  # type: ignore[arg-type]


def _count(policy: Policy, arm: ArmData) -> float:
    """An arm's answers, by the policy's traffic metric (0 when not read)."""
    observation = arm.get(policy.counted_by.name)
    return 0.0 if observation is None else estimate(observation).n
