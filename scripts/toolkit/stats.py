"""Always-valid inference for canary analysis: the mixture sequential probability ratio test.

For a metric, let d = canary - stable be the difference of the two arms' means, estimated by
d̂ with variance V (the sum of each arm's variance of its mean). Mixing the likelihood ratio of
the normal model over d ~ N(d0, τ²) gives, in closed form (Robbins 1970; Johari, Pekelis and
Walsh, "Always valid inference", 2017):

    Λ(d0) = sqrt(V / (V + τ²)) · exp(τ² (d̂ - d0)² / (2 V (V + τ²)))

Under d = d0, Λ is (to the normal approximation) a non-negative martingale with mean 1, so by
Ville's inequality P(Λ ever reaches 1/α) ≤ α: the analysis may look after every interval, for as
long as it likes, and the chance of a false alarm stays below α. That is what a fixed-sample
z-test checked at every interval cannot promise (its false alarms grow with every look).

Inverting the test gives a confidence sequence, an interval that covers d at all times with
probability 1 - α:

    d̂ ± sqrt(V (V + τ²) / τ² · (2 ln(1/α) + ln((V + τ²) / V)))

τ is the effect size the test is tuned to find fastest; the policy sets it per metric (by
default the regression margin), before any data is seen, as validity requires.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Keeps a variance away from zero when an arm has seen no event yet (0 errors of 300).
_PSEUDO = 0.5


@dataclass(frozen=True)
class Estimate:
    """An arm's mean, the variance of that mean, and the number of observations."""

    mean: float
    variance: float
    n: float


def proportion(hits: float, total: float) -> Estimate:
    """Share of events that are hits, with a variance that is never zero (Jeffreys-style)."""
    if total <= 0:
        return Estimate(mean=math.nan, variance=math.inf, n=0.0)
    smoothed = (hits + _PSEUDO) / (total + 2 * _PSEUDO)
    return Estimate(mean=hits / total, variance=smoothed * (1 - smoothed) / total, n=total)


def histogram_mean(bounds: tuple[float, ...], counts: tuple[float, ...], total: float) -> Estimate:
    """Mean of observations from a Prometheus histogram: the exact mean (sum / count), and a
    variance estimated from the buckets (midpoint second moment plus the within-bucket spread
    of a uniform, width²/12). `bounds` are upper bounds, the last may be +Inf; `counts` are
    per bucket (not cumulative)."""
    n = sum(counts)
    if n <= 0:
        return Estimate(mean=math.nan, variance=math.inf, n=0.0)
    mean = total / n
    second = 0.0
    lower = min(0.0, bounds[0])
    for upper, count in zip(bounds, counts, strict=True):
        if count:
            top = upper if math.isfinite(upper) else lower  # +Inf bucket: its lower edge
            mid, width = (lower + top) / 2, top - lower
            second += count * ((mid - mean) ** 2 + width**2 / 12)
        lower = upper if math.isfinite(upper) else lower
    variance = second / n
    return Estimate(mean=mean, variance=max(variance, 1e-12) / n, n=n)


def log_mixture_lr(diff: float, variance: float, tau: float, null: float = 0.0) -> float:
    """ln Λ(null) of the normal-mixture SPRT for an observed difference `diff` with `variance`."""
    if variance <= 0 or tau <= 0:
        raise ValueError("variance and tau must be positive")
    t2 = tau * tau
    return 0.5 * math.log(variance / (variance + t2)) + t2 * (diff - null) ** 2 / (
        2 * variance * (variance + t2)
    )


def cs_radius(variance: float, tau: float, alpha: float) -> float:
    """Half-width of the always-valid (1 - alpha) confidence sequence."""
    if not math.isfinite(variance):
        return math.inf
    t2 = tau * tau
    log_terms = 2 * math.log(1 / alpha) + math.log((variance + t2) / variance)
    return math.sqrt(variance * (variance + t2) / t2 * log_terms)


@dataclass(frozen=True)
class Comparison:
    """canary - stable, with its always-valid interval and the test against the margin."""

    diff: float
    variance: float
    low: float
    high: float
    z: float


def compare(stable: Estimate, canary: Estimate, *, tau: float, alpha: float) -> Comparison:
    """The difference canary - stable and its (1 - alpha) confidence sequence."""
    diff = canary.mean - stable.mean
    variance = stable.variance + canary.variance
    radius = cs_radius(variance, tau, alpha)
    z = diff / math.sqrt(variance) if math.isfinite(variance) and variance > 0 else 0.0
    return Comparison(diff=diff, variance=variance, low=diff - radius, high=diff + radius, z=z)


def interval(estimate: Estimate, *, tau: float, alpha: float) -> tuple[float, float]:
    """Always-valid (1 - alpha) interval for one arm's mean."""
    radius = cs_radius(estimate.variance, tau, alpha)
    return estimate.mean - radius, estimate.mean + radius
