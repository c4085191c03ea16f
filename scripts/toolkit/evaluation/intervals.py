"""Student-t intervals for each arm's mean and for the mean of the paired differences.

Why t and not a bootstrap: the scores are bounded and the set has ~100 cases, where the
t-interval's coverage is good (central limit theorem) while a percentile bootstrap under-covers
for small or lumpy samples (many differences are exactly 0); it is exact arithmetic with no
random seed, identical pairs give exactly [0, 0], and it can be checked against `scipy.stats.t`
(scipy is used when installed, else an exact closed form).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from scripts.toolkit.analysis import Effect


def _t_cdf(t: float, df: int) -> float:
    """Student-t CDF for integer `df`, in closed form (Abramowitz and Stegun 26.7.3-4)."""
    theta = math.atan(t / math.sqrt(df))
    c2, sin = math.cos(theta) ** 2, math.sin(theta)
    if df % 2:
        term = total = math.cos(theta) if df > 1 else 0.0
        for k in range(1, (df - 1) // 2):
            term *= 2 * k / (2 * k + 1) * c2
            total += term
        a = 2 / math.pi * (theta + sin * total)
    else:
        term = total = 1.0
        for k in range(1, df // 2):
            term *= (2 * k - 1) / (2 * k) * c2
            total += term
        a = sin * total
    return 0.5 + a / 2


def t_quantile(p: float, df: int) -> float:
    """The `p` quantile (p >= 0.5) of Student's t: scipy when installed, else bisection on the
    exact CDF (agrees with scipy to 1e-9)."""
    try:
        from scipy.stats import t as student  # noqa: PLC0415  # optional: a dev dependency
    except ImportError:
        low, high = 0.0, 1.0
        while _t_cdf(high, df) < p:
            high *= 2
        for _ in range(200):
            mid = (low + high) / 2
            low, high = (mid, high) if _t_cdf(mid, df) < p else (low, mid)
            if high - low < 1e-12:
                break
        return (low + high) / 2
    return float(student.ppf(p, df))


def mean_interval(values: Sequence[float], *, alpha: float, method: str = "Student-t") -> Effect:
    """Mean with its Student-t interval; unbounded for fewer than two values."""
    n = len(values)
    if n == 0:
        return Effect(math.nan, math.nan, math.nan, 1 - alpha, method, 0)
    mean = math.fsum(values) / n
    half = math.inf
    if n > 1:
        spread = statistics.stdev(values)
        half = t_quantile(1 - alpha / 2, n - 1) * spread / math.sqrt(n) if spread else 0.0
    return Effect(mean, mean - half, mean + half, 1 - alpha, method, n)


def paired_interval(
    candidate: Sequence[float], baseline: Sequence[float], *, alpha: float
) -> Effect:
    """Interval of the mean paired difference, candidate - baseline."""
    differences = [c - b for c, b in zip(candidate, baseline, strict=True)]
    return mean_interval(differences, alpha=alpha, method="paired Student-t")
