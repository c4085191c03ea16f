"""Judge benchmark: whole rollouts through the real monitor, on a simulated clock.

Every rollout runs the rollout policy (rollout/policy.yaml) with the real monitor
(`scripts.toolkit.monitor.Monitor`: the real judge, fast checks, step gates and time limits).
Every `fast_interval_seconds`, answers arrive at the given total rate (Poisson) and are split
between stable and canary by the canary's weight (per request, or per user when the policy's
`code_assignment` is `user`); per answer: errors, slow answers, a quality score shaped like the
service's (refusals at exactly 0, many answers at exactly 1, the rest spread), a cost and user
ratings. The monitor reads the cumulative counts as Ratio/Histogram observations, exactly as a
metric source delivers them, and promotes or rolls back.

Scenarios: `aa` (identical versions: every rollback is false), `errors_10`, `errors_50` (a
canary failing 10% or 50% of its answers), `quality_minus_0_2` (a quality score 0.2 lower),
`shared_outage` (identical; a dependency fails half the answers of both arms for 10 minutes at
a random time in the first hour), `drift` (identical; error rate and refusals of both arms swing
with a 2-hour period), `few_users` (identical; 10 users, each with their own error rate and
refusals, assigned as the policy says), `few_users_sticky` (the same 10 users, code canaries
assigned by user whatever the policy says: the judge counts users, from the canary's users first
seen), `crashing_canary` (the canary refuses every connection:
the router counts each refused request as a canary error and the canary answers nothing).

Usage: python benchmarks/bench_judge.py [--rollouts 1000] [--seed 1] [--rate 50 20 6.67 1 0.3]
       [--scenario aa errors_50 ...] [--json FILE] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from contract.metrics import COST_BUCKETS, SCORE_BUCKETS  # noqa: E402
from scripts.toolkit.judge import UNITS  # noqa: E402
from scripts.toolkit.metrics import Arm, ArmData, Histogram, MetricQuery, Ratio  # noqa: E402
from scripts.toolkit.metrics.factory import fixed_source  # noqa: E402
from scripts.toolkit.monitor import Monitor  # noqa: E402
from scripts.toolkit.policy import DEFAULT_POLICY, Policy, load_policy  # noqa: E402
from scripts.toolkit.targets import RolloutIdentity  # noqa: E402

Array = NDArray[np.float64]
SCORE_BOUNDS = (*SCORE_BUCKETS, math.inf)
COST_BOUNDS = (*COST_BUCKETS, math.inf)
Z95 = 1.959964


@dataclass(frozen=True)
class Behaviour:
    """What one version does, per answer."""

    errors: float = 0.01
    slow: float = 0.08
    refusals: float = 0.25  # score exactly 0
    perfect: float = 0.40  # of the other answers: score exactly 1 (grounded and cited)
    partial: tuple[float, float] = (16.0, 5.0)  # the rest: 0.3 + 0.7 * Beta(a, b)
    cost: float = 1e-4  # US dollars, log-normal around this
    cost_spread: float = 0.15
    rated: float = 0.30
    down: float = 0.20

    @property
    def quality(self) -> float:
        """Mean quality score."""
        a, b = self.partial
        answered = self.perfect + (1 - self.perfect) * (0.3 + 0.7 * a / (a + b))
        return (1 - self.refusals) * answered


@dataclass
class Counts:
    """Cumulative counts of one arm for every simulated rollout."""

    size: int
    answers: Array = field(init=False)
    errors: Array = field(init=False)
    slow: Array = field(init=False)
    rated: Array = field(init=False)
    down: Array = field(init=False)
    refused: Array = field(init=False)  # connections refused (counted as errors by the router)
    units: Array | None = None  # users first seen (sticky assignment only: the judge's UNITS)
    score_counts: Array = field(init=False)
    score_sum: Array = field(init=False)
    cost_counts: Array = field(init=False)
    cost_sum: Array = field(init=False)

    def __post_init__(self) -> None:
        for name in (
            "answers",
            "errors",
            "refused",
            "slow",
            "rated",
            "down",
            "score_sum",
            "cost_sum",
        ):
            setattr(self, name, np.zeros(self.size))
        self.score_counts = np.zeros((self.size, len(SCORE_BOUNDS)))
        self.cost_counts = np.zeros((self.size, len(COST_BOUNDS)))

    def add(
        self,
        rng: np.random.Generator,
        rows: NDArray[np.intp],
        n: NDArray[np.int64],
        b: Behaviour,
        errors_p: Array | None = None,
        refusals_p: Array | None = None,
    ) -> None:
        """`n[i]` more answers of behaviour `b` for rollout `rows[i]` (with per-rollout error
        and refusal rates when given)."""
        errors = rng.binomial(n, b.errors if errors_p is None else errors_p)
        answered = n - errors
        refused = rng.binomial(answered, b.refusals if refusals_p is None else refusals_p)
        perfect = rng.binomial(answered - refused, b.perfect)
        partial = answered - refused - perfect
        rated = rng.binomial(answered, b.rated)
        self.answers[rows] += n
        self.errors[rows] += errors
        self.slow[rows] += rng.binomial(answered, b.slow)
        self.rated[rows] += rated
        self.down[rows] += rng.binomial(rated, b.down)
        scores = 0.3 + 0.7 * rng.beta(*b.partial, size=int(partial.sum()))
        _bin(self.score_counts, self.score_sum, rows, partial, scores, SCORE_BOUNDS)
        self.score_counts[rows, 0] += refused  # exactly 0: the first bucket
        self.score_counts[rows, SCORE_BUCKETS.index(1.0)] += perfect
        self.score_sum[rows] += perfect
        costs = b.cost * rng.lognormal(0.0, b.cost_spread, size=int(answered.sum()))
        _bin(self.cost_counts, self.cost_sum, rows, answered, costs, COST_BOUNDS)

    def observations(self, row: int) -> ArmData:
        """What a metric source would deliver for rollout `row`, by policy metric name."""
        answered = self.answers[row] - self.errors[row]
        return {
            "error_rate": Ratio(
                self.errors[row] + self.refused[row], self.answers[row] + self.refused[row]
            ),
            "slow_answers": Ratio(self.slow[row], answered),
            "quality_score": Histogram(
                SCORE_BOUNDS, tuple(self.score_counts[row].tolist()), float(self.score_sum[row])
            ),
            "cost_per_answer": Histogram(
                COST_BOUNDS, tuple(self.cost_counts[row].tolist()), float(self.cost_sum[row])
            ),
            "negative_feedback": Ratio(self.down[row], self.rated[row]),
            **({} if self.units is None else {UNITS: Ratio(self.units[row], self.answers[row])}),
        }


def _bin(
    counts: Array,
    sums: Array,
    rows: NDArray[np.intp],
    sizes: NDArray[np.int64],
    values: Array,
    bounds: tuple[float, ...],
) -> None:
    """Add `values` (the first sizes[0] to rows[0], and so on) to per-bucket counts and sums."""
    owner = np.repeat(np.arange(rows.size), sizes)
    buckets = len(bounds)
    index = np.searchsorted(np.asarray(bounds), values, side="left")
    per_row = np.bincount(owner * buckets + index, minlength=rows.size * buckets)
    counts[rows] += per_row.reshape(rows.size, buckets)
    sums[rows] += np.bincount(owner, weights=values, minlength=rows.size)


class Clock:
    """The simulated time every monitor reads."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class SimulatedTarget:
    """A rollout target that only remembers the canary's weight and how the rollout ended."""

    percent: float = 0.0
    ended: str | None = None
    kind: str = "code"

    def canary_percent(self) -> float:
        """The canary's share of traffic."""
        return self.percent

    def arms(self) -> tuple[Arm, Arm]:
        """Arm names only: the simulated source knows the data."""
        return Arm("stable", {"track": "stable"}), Arm("canary", {"track": "canary"})

    crashed: bool = False  # the canary refuses every connection

    def set_percent(self, percent: float, *, per_request: bool = False) -> None:
        """Move traffic."""
        self.percent = percent

    def canary_down(self) -> str | None:
        """What the monitor's probe of the canary finds."""
        return "every canary instance refuses connections" if self.crashed else None

    def finish(self) -> None:
        """Promoted."""
        self.ended = "promoted"

    def rollback(self) -> None:
        """Rolled back."""
        self.percent, self.ended = 0.0, "rolled back"

    def describe(self) -> dict[str, Any]:
        """For the monitor's state."""
        return {"kind": self.kind}

    def summary(self) -> str:
        """For the rollback message."""
        return f"canary at {self.percent:g}%"

    def identity(self) -> RolloutIdentity:
        """For the monitor's state."""
        return RolloutIdentity(self.kind, "simulated", "candidate")


@dataclass
class SimulatedSource:
    """Hands the monitor the observations the driver prepared for this check."""

    data: dict[str, ArmData] = field(default_factory=dict)

    def read(self, queries: Sequence[MetricQuery], arms: Sequence[Arm]) -> dict[str, ArmData]:
        """The prepared observations."""
        return self.data


@dataclass(frozen=True)
class Scenario:
    """What the canary does and what happens around it."""

    name: str
    canary: Behaviour = Behaviour()
    outage: bool = False  # both arms: half the answers fail for 10 minutes in the first hour
    drift: bool = False  # both arms: error rate and refusals swing with a 2-hour period
    users: int = 0  # that many users, each with their own error rate and refusals
    sticky: bool = False  # code canaries assigned by user, whatever the policy says
    crash: bool = False  # the canary refuses every connection


BASE = Behaviour()
SCENARIOS = {
    s.name: s
    for s in (
        Scenario("aa"),
        Scenario("errors_10", Behaviour(errors=0.10)),
        Scenario("errors_50", Behaviour(errors=0.50)),
        Scenario(
            "quality_minus_0_2",
            Behaviour(refusals=1 - (BASE.quality - 0.2) / (BASE.quality / (1 - BASE.refusals))),
        ),
        Scenario("shared_outage", outage=True),
        Scenario("drift", drift=True),
        Scenario("few_users", users=10),
        Scenario("few_users_sticky", users=10, sticky=True),
        Scenario("crashing_canary", crash=True),
    )
}
OUTAGE_SECONDS, OUTAGE_ERRORS, DRIFT_PERIOD = 600.0, 0.5, 7200.0
MAX_SECONDS = 8 * 3600.0  # a rollout still running then counts as held


@dataclass
class Outcome:
    """How one simulated rollout ended."""

    final: str = "held"  # "promoted", "rolled back" or "held"
    cause: str = ""  # "judge" or "failsafe" for rollbacks
    seconds: float = 0.0
    canary_answers: float = 0.0
    failed_requests: float = 0.0
    reasons: tuple[str, ...] = ()


def simulate(  # noqa: PLR0912, PLR0915  # one loop drives the whole simulated world
    policy: Policy, scenario: Scenario, *, rollouts: int, rate: float, seed: int
) -> list[Outcome]:
    """Run `rollouts` rollouts from the first step to promotion, rollback or MAX_SECONDS."""
    rng = np.random.default_rng(seed)
    if scenario.sticky:
        policy = policy.model_copy(update={"code_assignment": "user"})
    clock = Clock()
    targets = [SimulatedTarget(crashed=scenario.crash) for _ in range(rollouts)]
    sources = [SimulatedSource() for _ in range(rollouts)]
    monitors = [
        Monitor(policy, t, fixed_source(s), act=True, clock=clock, sleep=lambda _: None)
        for t, s in zip(targets, sources, strict=True)
    ]
    stable, canary = Counts(rollouts), Counts(rollouts)
    outcomes = [Outcome() for _ in range(rollouts)]
    outage_at = rng.uniform(0, 3600, rollouts)
    phase = rng.uniform(0, DRIFT_PERIOD, rollouts)
    users = max(scenario.users, 1)
    user_errors = np.clip(BASE.errors * rng.lognormal(0, 1, (rollouts, users)), 0, 0.5)
    user_refusals = np.clip(BASE.refusals + rng.normal(0, 0.15, (rollouts, users)), 0.02, 0.9)
    user_bucket = rng.uniform(0, 1, (rollouts, users))
    sticky = scenario.users > 0 and policy.code_assignment == "user"
    if sticky:  # every user was served by stable before the rollout; the canary starts fresh
        stable.units, canary.units = np.full(rollouts, float(users)), np.zeros(rollouts)
    seen = np.zeros((rollouts, users), dtype=bool)  # users the canary has served
    tick = policy.fast_interval
    # Stable served before the rollout: the monitor's first reading is not at zero.
    stable.add(rng, np.arange(rollouts), rng.poisson(rate * 600, rollouts), BASE)
    due = np.zeros(rollouts)
    active = np.arange(rollouts)
    while active.size:
        for row in active[due[active] <= clock.now + 1e-9]:
            i = int(row)
            sources[i].data = {"stable": stable.observations(i), "canary": canary.observations(i)}
            result = monitors[i].check()
            due[i] = clock.now + monitors[i].next_interval()
            if targets[i].ended is not None:
                o = outcomes[i]
                o.final, o.seconds = targets[i].ended or "", clock.now
                o.reasons = (*result.reasons, *monitors[i].state.notes)
                o.canary_answers = float(canary.answers[i])
                o.failed_requests = float(canary.errors[i] + canary.refused[i])
                if o.final == "rolled back":
                    unavailable = any("unavailable" in r for r in result.reasons)
                    o.cause = "failsafe" if unavailable else "judge"
        active = np.array([r for r in active if targets[int(r)].ended is None], dtype=np.intp)
        if not active.size or clock.now >= MAX_SECONDS:
            break
        clock.now += tick
        weights = np.array([targets[int(r)].percent / 100 for r in active])
        errors = np.full(active.size, BASE.errors)
        refusals = np.full(active.size, BASE.refusals)
        if scenario.drift:
            swing = np.sin(2 * np.pi * (clock.now + phase[active]) / DRIFT_PERIOD)
            errors = errors * (1 + 0.9 * swing)
            refusals = refusals + 0.1 * swing
        if scenario.outage:
            start = outage_at[active]
            down = (clock.now > start) & (clock.now <= start + OUTAGE_SECONDS)
            errors = np.where(down, OUTAGE_ERRORS, errors)
        c_errors = np.where(errors > BASE.errors, errors, scenario.canary.errors)
        c_refusals = np.where(refusals != BASE.refusals, refusals, scenario.canary.refusals)
        for u in range(users):
            total = rng.poisson(rate * tick / users, active.size)
            if sticky:
                to_canary = np.where(user_bucket[active, u] < weights, total, 0)
                first = (to_canary > 0) & ~seen[active, u]
                seen[active[first], u] = True
                assert canary.units is not None  # set for sticky runs
                canary.units[active[first]] += 1
            else:
                to_canary = rng.binomial(total, weights)
            s_err, s_ref, c_err, c_ref = errors, refusals, c_errors, c_refusals
            if scenario.users:
                s_err = c_err = user_errors[active, u]
                s_ref = c_ref = user_refusals[active, u]
            stable.add(rng, active, total - to_canary, BASE, s_err, s_ref)
            if scenario.crash:
                canary.refused[active] += to_canary
            else:
                canary.add(rng, active, to_canary, scenario.canary, c_err, c_ref)
    return outcomes


def summary(scenario: str, rate: float, outcomes: list[Outcome]) -> dict[str, Any]:
    """One row of the benchmark's JSON."""

    def quantile(values: list[float], q: float) -> float | None:
        return float(np.quantile(values, q)) if values else None

    ended = [o for o in outcomes if o.final != "held"]
    failed = [o.failed_requests for o in outcomes]
    return {
        "scenario": scenario,
        "rate": round(rate, 3),
        "rollouts": len(outcomes),
        "promoted": sum(o.final == "promoted" for o in outcomes),
        "rolled_back_judge": sum(o.cause == "judge" for o in outcomes),
        "rolled_back_failsafe": sum(o.cause == "failsafe" for o in outcomes),
        "held": sum(o.final == "held" for o in outcomes),
        "failed_requests_median": quantile(failed, 0.5),
        "failed_requests_p95": quantile(failed, 0.95),
        "seconds_median": quantile([o.seconds for o in ended], 0.5),
        "canary_answers_median": quantile([o.canary_answers for o in ended], 0.5),
        "promoted_without_evidence": sum(
            any("without evidence" in r for r in o.reasons) or False for o in outcomes
        ),
    }


def _run(job: tuple[Path, str, float, int, int]) -> dict[str, Any]:
    path, name, rate, rollouts, seed = job
    outcomes = simulate(load_policy(path), SCENARIOS[name], rollouts=rollouts, rate=rate, seed=seed)
    return summary(name, rate, outcomes)


def table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a Markdown table."""
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        cells = [
            f"{v:.0f}"
            if isinstance(v, float) and v >= 10
            else f"{v:.3g}"
            if isinstance(v, float)
            else "-"
            if v is None
            else str(v)
            for v in row.values()
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print a Markdown table and write the rows as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rollouts", type=int, default=1000, help="rollouts per row")
    parser.add_argument("--seed", type=int, default=1, help="random seed")
    parser.add_argument(
        "--rate", type=float, nargs="+", default=[50.0, 20.0, 20 / 3, 1.0, 0.3],
        help="answers per second in total, one or more",
    )  # fmt: skip
    parser.add_argument(
        "--scenario", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS),
        help="scenarios to run (default: all)",
    )  # fmt: skip
    parser.add_argument("--policy", type=Path, default=DEFAULT_POLICY, help="rollout policy")
    parser.add_argument("--json", type=Path, help="write the rows to this file")
    parser.add_argument("--workers", type=int, default=2, help="processes")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    jobs = [
        (args.policy, name, rate, args.rollouts, args.seed + i)
        for i, (name, rate) in enumerate(
            (name, rate) for name in args.scenario for rate in args.rate
        )
    ]
    with ProcessPoolExecutor(args.workers) as pool:
        rows = []
        for row in pool.map(_run, jobs):
            rows.append(row)
            print(
                f"[{time.perf_counter() - started:5.0f} s] {row['scenario']} at {row['rate']:g}",
                file=sys.stderr, flush=True,
            )  # fmt: skip
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
