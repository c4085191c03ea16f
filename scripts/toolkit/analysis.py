"""What the canary judge, the quality gate and the A/B report share: margins, effects, verdicts.

Every comparison here is of two arms (stable/canary, baseline/candidate, production/canary) on
one metric. The effect is the second arm minus the first, with an interval. A metric's rule
says which way is better (`direction`) and how much worse the second arm may be (its margin:
`max_regression`, or `max_relative_regression` of the first arm's value, the larger if both).
An interval is read against what is allowed, the same way everywhere:

- `fail`: the whole interval is worse than allowed (shown worse);
- `pass`: the whole interval is within what is allowed (shown within);
- `inconclusive`: neither yet.

`insufficient` (too few observations), `missing` (no data for an arm) and `report` (a metric
with no rule, shown only) complete the per-metric vocabulary. The decisions on top are each
tool's own: the judge's promote/rollback/hold, the gate's pass/fail, the report's winner.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

Direction = Literal["lower_is_better", "higher_is_better"]
Reading = Literal["pass", "fail", "inconclusive"]
Verdict = Literal["pass", "fail", "inconclusive", "insufficient", "missing", "report"]


class Rule(Protocol):
    """Which way a metric is better and how much worse the second arm may be."""

    direction: Direction
    max_regression: float | None
    max_relative_regression: float | None


def margin(rule: Rule, baseline: float) -> float | None:
    """How much worse than `baseline` (the first arm's value) the second arm may be: the larger
    of the absolute and the relative allowance (either alone when only one is set)."""
    allowances = [rule.max_regression] if rule.max_regression is not None else []
    if rule.max_relative_regression is not None and math.isfinite(baseline):
        allowances.append(rule.max_relative_regression * abs(baseline))
    return max(allowances) if allowances else None


def worse_sign(direction: Direction) -> float:
    """+1 when a higher value is worse, -1 when a lower value is worse."""
    return 1.0 if direction == "lower_is_better" else -1.0


@dataclass(frozen=True)
class Effect:
    """An estimate with its two-sided interval at `level`, found by `method`, over `n` values."""

    estimate: float
    low: float
    high: float
    level: float
    method: str
    n: float = 0.0

    def worse_by(self, direction: Direction) -> tuple[float, float]:
        """How much worse than zero the interval says the value is, at least and at most."""
        ends = sorted((worse_sign(direction) * self.low, worse_sign(direction) * self.high))
        return ends[0], ends[1]

    def read(self, direction: Direction, *, allowed: float = 0.0) -> Reading:
        """`fail` when shown worse by more than `allowed`, `pass` when shown within,
        `inconclusive` otherwise (an unbounded interval included)."""
        least, most = self.worse_by(direction)
        return "fail" if least > allowed else "inconclusive" if most > allowed else "pass"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (non-finite numbers as None)."""
        return json_ready(
            {
                "estimate": self.estimate,
                "ci_low": self.low,
                "ci_high": self.high,
                "n": self.n,
                "level": self.level,
                "method": self.method,
            }
        )


def json_ready(data: Mapping[str, Any]) -> dict[str, Any]:
    """`data` with every non-finite float, however deeply nested, as None (JSON has none) and
    every `Effect` in its JSON form."""
    return {k: clean(v) for k, v in data.items()}


def clean(value: Any) -> Any:
    """`value` with every non-finite float, however deeply nested, as None (JSON has none)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, Effect):
        return value.to_dict()
    return value
