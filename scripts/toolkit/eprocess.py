"""Exact always-valid tests by betting: a canary's own limits and its share of the traffic.

Observations x lie in [low, high]; the null says their mean is no worse than m. Betting a fixed
share λ of one's wealth on each observation multiplies it by 1 + λ·s·(x - m), s = +1 when
higher is worse (Waudby-Smith and Ramdas, "Estimating means of bounded random variables by
betting", 2024). Under the null each factor has conditional mean at most 1, so the wealth is a
test supermartingale: by Ville's inequality it ever reaches 1/α with probability at most α,
from the first observation on, however often it is read, with no normal approximation.

A bet fixed in advance makes the wealth a function of the counts alone, so the cumulative counts
read at each check are enough and the order within a batch does not matter (the bet of a batch
is fixed before it). The test bets on a fixed grid of λ and averages the wealths, itself an
e-process: large bets find a catastrophe in a handful of answers, small ones a moderate breach.
A histogram's observation is placed at the edge of its bucket least favourable to rejecting
(the lower edge when higher is worse, the upper edge when lower is), so the test stays valid.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

# Shares of the largest bet that cannot lose everything on one observation.
GRID = (0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.7)


def log_evalue(
    points: Iterable[tuple[float, float]],
    *,
    null: float,
    low: float,
    high: float,
    higher_is_worse: bool,
) -> float:
    """ln of the e-value against "the mean is no worse than `null`", for observations given as
    (value, count) pairs within [low, high]."""
    sign = 1.0 if higher_is_worse else -1.0
    reach = null - low if higher_is_worse else high - null  # the loss per unit bet at worst
    if reach <= 0:
        return 0.0  # a null at the edge of the range: nothing can be won betting against it
    pairs = [(sign * (min(max(x, low), high) - null) / reach, n) for x, n in points if n > 0]
    logs = [sum(n * math.log1p(c * gain) for gain, n in pairs) for c in GRID]
    top = max(logs)
    return top + math.log(sum(math.exp(v - top) for v in logs) / len(GRID))
