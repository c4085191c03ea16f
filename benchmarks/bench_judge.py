"""Judge benchmark: false rollbacks of identical versions, and power and speed against bad ones.

Simulates whole rollouts through the rollout policy (rollout/policy.yaml) with the real monitor
(`scripts.toolkit.monitor.Monitor`, so the real judge, step gates and time limits) on a
simulated clock. Every interval, answers arrive at a fixed rate and are split between stable
and canary by the canary's current weight; per answer: errors, slow answers, a quality score
shaped like the service's (refusals at exactly 0, many answers at exactly 1, the rest spread),
a cost, and user ratings. The monitor reads the cumulative counts as Ratio/Histogram
observations, exactly as a metric source delivers them, and promotes or rolls back.

(a) A/A: stable and canary identical. Every rollback is false. Next to the judge, on the same
    data and at the same checks, a naive fixed-sample 95% z-test ("is the canary significantly
    worse?") and the always-valid test asked the same question, to show what checking every
    interval does to each.
(b) Power and speed: a canary with 10% or 50% errors, or a quality score 0.2 lower, starting at
    the first step (5%): how often it is rolled back, after how many canary answers and seconds.

Usage: python benchmarks/bench_judge.py [--rollouts 1000] [--seed 1] [--rate 20]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from contract.metrics import COST_BUCKETS, SCORE_BUCKETS  # noqa: E402
from scripts.toolkit.judge import estimate  # noqa: E402
from scripts.toolkit.metrics import Arm, ArmData, Histogram, MetricQuery, Ratio  # noqa: E402
from scripts.toolkit.metrics.factory import fixed_source  # noqa: E402
from scripts.toolkit.monitor import CheckResult, Monitor  # noqa: E402
from scripts.toolkit.policy import DEFAULT_POLICY, Policy, load_policy  # noqa: E402
from scripts.toolkit.stats import compare  # noqa: E402
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
    score_counts: Array = field(init=False)
    score_sum: Array = field(init=False)
    cost_counts: Array = field(init=False)
    cost_sum: Array = field(init=False)

    def __post_init__(self) -> None:
        for name in ("answers", "errors", "slow", "rated", "down", "score_sum", "cost_sum"):
            setattr(self, name, np.zeros(self.size))
        self.score_counts = np.zeros((self.size, len(SCORE_BOUNDS)))
        self.cost_counts = np.zeros((self.size, len(COST_BOUNDS)))

    def add(
        self, rng: np.random.Generator, rows: NDArray[np.intp], n: NDArray[np.int64], b: Behaviour
    ) -> None:
        """`n[i]` more answers of behaviour `b` for rollout `rows[i]`."""
        errors = rng.binomial(n, b.errors)
        answered = n - errors
        refused = rng.binomial(answered, b.refusals)
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
            "error_rate": Ratio(self.errors[row], self.answers[row]),
            "slow_answers": Ratio(self.slow[row], answered),
            "quality_score": Histogram(
                SCORE_BOUNDS, tuple(self.score_counts[row].tolist()), float(self.score_sum[row])
            ),
            "cost_per_answer": Histogram(
                COST_BOUNDS, tuple(self.cost_counts[row].tolist()), float(self.cost_sum[row])
            ),
            "negative_feedback": Ratio(self.down[row], self.rated[row]),
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

    def set_percent(self, percent: float) -> None:
        """Move traffic."""
        self.percent = percent

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


@dataclass
class Outcome:
    """How one simulated rollout ended, and when the shadow tests would have rolled back."""

    final: str = ""
    cause: str = ""  # "judge", "timeout" or "" (promoted)
    failed: tuple[str, ...] = ()  # critical metrics failing at the rollback
    undecided: tuple[str, ...] = ()  # critical metrics not yet passing at a timeout
    step: float = 0.0
    seconds: float = 0.0
    canary_answers: float = 0.0
    naive_at: float | None = None  # first check at which the fixed 95% z-test fired
    sequential_at: float | None = None  # same question, always-valid test


def shadow_tests(
    policy: Policy, stable: ArmData, canary: ArmData, alpha: float
) -> tuple[bool, bool]:
    """Would "is the canary worse than stable at all?" roll back now, per critical metric:
    (a fixed-sample 95% z-test, the always-valid test at alpha split over the metrics)."""
    naive = sequential = False
    for metric in policy.metrics:
        if not metric.critical:
            continue
        s, c = estimate(stable[metric.name]), estimate(canary[metric.name])
        need = policy.samples_needed(metric)
        if s.n < need or c.n < need:
            continue
        sign = metric.worse_sign
        worse = sign * (c.mean - s.mean)
        naive = naive or worse > Z95 * math.sqrt(s.variance + c.variance)
        if not sequential:
            cmp = compare(s, c, tau=metric.tau, alpha=alpha)
            sequential = (cmp.low > 0) if sign > 0 else (cmp.high < 0)
    return naive, sequential


def simulate(
    policy: Policy,
    canary_behaviour: Behaviour,
    *,
    rollouts: int,
    rate: float,
    rng: np.random.Generator,
    stable_behaviour: Behaviour | None = None,
    shadow: bool = False,
) -> list[Outcome]:
    """Run `rollouts` rollouts from the first step to promotion or rollback."""
    stable_behaviour = stable_behaviour or Behaviour()
    clock = Clock()
    targets = [SimulatedTarget() for _ in range(rollouts)]
    sources = [SimulatedSource() for _ in range(rollouts)]
    monitors = [
        Monitor(policy, t, fixed_source(s), act=True, clock=clock, sleep=lambda _: None)
        for t, s in zip(targets, sources, strict=True)
    ]
    stable, canary = Counts(rollouts), Counts(rollouts)
    outcomes = [Outcome() for _ in range(rollouts)]
    critical = sum(m.critical for m in policy.metrics)
    per_interval = rate * policy.interval_seconds
    active = np.arange(rollouts)
    while active.size:
        for row in active:
            i = int(row)
            sources[i].data = {
                "stable": stable.observations(i),
                "canary": canary.observations(i),
            }
            result = monitors[i].check()
            outcome = outcomes[i]
            if shadow and (outcome.naive_at is None or outcome.sequential_at is None):
                naive, sequential = shadow_tests(
                    policy,
                    sources[i].data["stable"],
                    sources[i].data["canary"],
                    policy.alpha / critical,
                )
                if naive and outcome.naive_at is None:
                    outcome.naive_at = clock.now
                if sequential and outcome.sequential_at is None:
                    outcome.sequential_at = clock.now
            if targets[i].ended is not None:
                _record(outcome, targets[i], result, clock.now, canary.answers[i])
        active = np.array([r for r in active if targets[int(r)].ended is None], dtype=np.intp)
        if not active.size:
            break
        clock.now += policy.interval_seconds
        weights = np.array([targets[int(r)].percent / 100 for r in active])
        total = rng.poisson(per_interval, active.size)
        to_canary = rng.binomial(total, weights)
        stable.add(rng, active, total - to_canary, stable_behaviour)
        canary.add(rng, active, to_canary, canary_behaviour)
    return outcomes


def _record(
    outcome: Outcome, target: SimulatedTarget, result: CheckResult, now: float, answers: float
) -> None:
    outcome.final = target.ended or ""
    outcome.seconds = now
    outcome.canary_answers = float(answers)
    outcome.step = result.step
    if outcome.final == "rolled back":
        timeout = any(r.startswith("still undecided") for r in result.reasons)
        outcome.cause = "timeout" if timeout else "judge"
        if result.verdict is not None:
            critical = [m for m in result.verdict.metrics if m.critical]
            outcome.failed = tuple(m.name for m in critical if m.verdict == "fail")
            outcome.undecided = tuple(m.name for m in critical if m.verdict != "pass")


# --- reporting -------------------------------------------------------------------------------


def wilson(hits: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson interval of a proportion."""
    if n == 0:
        return math.nan, math.nan
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def share(hits: int, n: int) -> str:
    """`p (CI low-high)` for a table cell."""
    low, high = wilson(hits, n)
    return f"{hits / n:.3f} ({low:.3f}-{high:.3f})"


def median(values: Sequence[float]) -> str:
    """The median, or `-` for none."""
    return f"{float(np.median(values)):.0f}" if values else "-"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def aa_table(runs: dict[float, list[Outcome]], policy: Policy) -> str:
    """False rollbacks of identical versions, one column per traffic rate."""
    critical = sum(m.critical for m in policy.metrics)
    questions: list[tuple[str, Callable[[Outcome], bool]]] = [
        ("judge as shipped: rolled back by the judge", lambda o: o.cause == "judge"),
        (
            f"judge as shipped: rolled back after max_step_seconds ({policy.max_step_seconds:g} s)"
            " undecided",
            lambda o: o.cause == "timeout",
        ),
        ("judge as shipped: all rollbacks", lambda o: o.final == "rolled back"),
        (
            "naive: fixed 95% z-test 'canary worse?' per critical metric, every interval",
            lambda o: o.naive_at is not None,
        ),
        (
            f"always-valid test, same question, alpha {policy.alpha:g}/{critical} per metric",
            lambda o: o.sequential_at is not None,
        ),
    ]
    rows = [
        [label, *(share(sum(map(test, outcomes)), len(outcomes)) for outcomes in runs.values())]
        for label, test in questions
    ]
    rows.append(
        [
            "promoted to 100%: median seconds from the first step",
            *(
                median([o.seconds for o in outcomes if o.final == "promoted"])
                for outcomes in runs.values()
            ),
        ]
    )
    rows.append(
        [
            "timeouts: step, and critical metrics not yet passing",
            *(_timeouts(outcomes) for outcomes in runs.values()),
        ]
    )
    header = [
        "A/A, checked every interval",
        *(
            f"{rate:.3g} answers/s ({rate * policy.interval_seconds:.0f} per interval)"
            for rate in runs
        ),
    ]
    return table(header, rows)


def _timeouts(outcomes: list[Outcome]) -> str:
    """Where the timed-out rollouts stood: steps, and the metrics still undecided."""
    steps: dict[float, int] = {}
    metrics: dict[str, int] = {}
    for o in outcomes:
        if o.cause == "timeout":
            steps[o.step] = steps.get(o.step, 0) + 1
            for metric in o.undecided:
                metrics[metric] = metrics.get(metric, 0) + 1
    if not steps:
        return "-"
    at = ", ".join(f"{n} at {step:g}%" for step, n in sorted(steps.items()))
    return f"{at}; " + ", ".join(
        f"{k} {v}" for k, v in sorted(metrics.items(), key=lambda kv: -kv[1])
    )


def power_row(name: str, outcomes: list[Outcome]) -> list[str]:
    """One row of the power table."""
    n = len(outcomes)
    caught = [o for o in outcomes if o.cause == "judge"]
    failed: dict[str, int] = {}
    for o in caught:
        for metric in o.failed:
            failed[metric] = failed.get(metric, 0) + 1
    named = ", ".join(f"{k} {v}" for k, v in sorted(failed.items(), key=lambda kv: -kv[1]))
    return [
        name,
        share(len(caught), n),
        str(sum(o.cause == "timeout" for o in outcomes)),
        str(sum(o.final == "promoted" for o in outcomes)),
        median([o.canary_answers for o in caught]),
        median([o.seconds for o in caught]),
        named or "-",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print Markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rollouts", type=int, default=1000, help="rollouts per scenario")
    parser.add_argument("--seed", type=int, default=1, help="random seed")
    parser.add_argument(
        "--rate",
        type=float,
        nargs="+",
        default=[20.0, 200 / 30],
        help="answers per second in total, one or more (default: 20 and 6.67)",
    )
    parser.add_argument("--policy", type=Path, default=DEFAULT_POLICY, help="rollout policy")
    args = parser.parse_args(argv)
    policy = load_policy(args.policy)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    base = Behaviour()

    def progress(what: str) -> None:
        print(f"[{time.perf_counter() - started:5.0f} s] {what}", file=sys.stderr, flush=True)

    print(
        f"Policy {args.policy.name}: steps {'/'.join(f'{s:g}' for s in policy.steps)}, interval "
        f"{policy.interval_seconds:g} s, min/max step {policy.min_step_seconds:g}/"
        f"{policy.max_step_seconds:g} s, min_samples {policy.min_samples}, alpha {policy.alpha:g}. "
        f"{args.rollouts} rollouts per scenario and rate, seed {args.seed}. Per answer: "
        f"{base.errors:.0%} errors, {base.slow:.0%} slow, quality score mean {base.quality:.3f} "
        f"({base.refusals:.0%} refusals at 0, {base.perfect:.0%} of the rest at 1), cost "
        f"{base.cost:g} USD (log-normal, sigma {base.cost_spread:g}), {base.rated:.0%} rated "
        f"with {base.down:.0%} down.\n"
    )
    aa: dict[float, list[Outcome]] = {}
    for rate in args.rate:
        progress(f"A/A at {rate:.3g} answers/s")
        aa[rate] = simulate(policy, base, rollouts=args.rollouts, rate=rate, rng=rng, shadow=True)
    print("#### (a) Identical versions (A/A): false rollback rate (95% CI)\n")
    print(aa_table(aa, policy))
    scenarios: list[tuple[str, Behaviour]] = [
        ("10% errors (stable 1%)", Behaviour(errors=0.10)),
        ("50% errors", Behaviour(errors=0.50)),
        (
            "quality 0.2 lower (47% refusals)",
            Behaviour(refusals=1 - (base.quality - 0.2) / (base.quality / (1 - base.refusals))),
        ),
    ]
    rows = []
    for rate in args.rate:
        for name, behaviour in scenarios:
            progress(f"{name} at {rate:.3g} answers/s")
            outcomes = simulate(policy, behaviour, rollouts=args.rollouts, rate=rate, rng=rng)
            rows.append([f"{rate:.3g}", *power_row(name, outcomes)])
    print(f"\n#### (b) Bad canaries, from the first step ({policy.steps[0]:g}%)\n")
    print(
        table(
            [
                "answers/s",
                "canary",
                "rolled back by the judge (95% CI)",
                "timeouts",
                "promoted",
                "median canary answers",
                "median seconds",
                "failing metrics",
            ],
            rows,
        )
    )
    progress("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
