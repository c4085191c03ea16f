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

Rates (errors out of answers) need one refinement. Their variance depends on the rate, and a
canary that has seen 0 errors in 200 answers would otherwise get a variance near zero and an
interval that excludes a true 1% error rate. For rates the test at each null value d0 uses the
variance *at that null* (the score-test principle, as in the Wilson interval): both arms' rates
re-estimated under "canary - stable = d0", which leans on the large stable arm. The interval's
ends are found numerically. Every variance has a floor (half a pseudo-event, Jeffreys-style), so
no estimate is ever certain.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# Keeps a variance away from zero when an arm has seen no event yet (0 errors of 300).
_PSEUDO = 0.5


@dataclass(frozen=True)
class Estimate:
    """An arm's mean, the variance of that mean, and the number of observations. `bernoulli`
    marks a rate (0/1 observations), whose variance follows from its mean."""

    mean: float
    variance: float
    n: float
    bernoulli: bool = False


def _rate_floor(n: float) -> float:
    """The smallest per-observation variance a rate over `n` events is given."""
    smoothed = _PSEUDO / (n + 2 * _PSEUDO)
    return smoothed * (1 - smoothed)


def proportion(hits: float, total: float) -> Estimate:
    """Share of events that are hits, with a variance that is never zero (Jeffreys-style)."""
    if total <= 0:
        return Estimate(mean=math.nan, variance=math.inf, n=0.0, bernoulli=True)
    smoothed = (hits + _PSEUDO) / (total + 2 * _PSEUDO)
    return Estimate(
        mean=hits / total, variance=smoothed * (1 - smoothed) / total, n=total, bernoulli=True
    )


def histogram_mean(bounds: tuple[float, ...], counts: tuple[float, ...], total: float) -> Estimate:
    """Mean of observations from a Prometheus histogram: the exact mean (sum / count), and a
    variance estimated from the buckets (midpoint second moment plus the within-bucket spread
    of a uniform, width²/12). `bounds` are upper bounds, the last may be +Inf; `counts` are
    per bucket (not cumulative).

    For data spread smoothly over the buckets this overstates the variance by about width²/6
    (safe side); observations piled on a bucket edge (scores of exactly 0 or 1) are understated
    by up to (width/2)² each. With the service's 0.05-wide score buckets both are small."""
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


def _rate_variance(rate: float, n: float) -> float:
    """Variance of a rate's mean over `n` events if the true rate were `rate`."""
    return max(rate * (1 - rate), _rate_floor(n)) / n


def _null_variance(
    stable: Estimate, canary: Estimate, stable_weight: float
) -> Callable[[float], float]:
    """The variance of canary - stable for two rates, as a function of the null difference:
    both rates re-estimated under it (least squares, so the larger arm weighs most), kept
    inside [0, 1] on both sides."""
    ns, nc = stable.n, canary.n
    share = nc / (ns + nc)
    center = (ns * stable.mean + nc * canary.mean) / (ns + nc)
    floor_s, floor_c = _rate_floor(ns), _rate_floor(nc)

    def variance(null: float) -> float:
        rate = center - share * null
        rate = min(max(rate, -null, 0.0), 1.0 - null, 1.0)
        other = rate + null
        return (
            stable_weight * max(rate * (1 - rate), floor_s) / ns
            + max(other * (1 - other), floor_c) / nc
        )

    return variance


def difference_variance(
    stable: Estimate, canary: Estimate, *, null: float | None = None, stable_weight: float = 1.0
) -> float:
    """Variance of canary - stable; for rates, evaluated where canary - stable = `null` (the
    default: where it is observed). `stable_weight` scales the stable arm's share (a margin
    relative to the stable mean carries the stable arm's uncertainty as well)."""
    if not (stable.bernoulli and canary.bernoulli) or null is None:
        return stable_weight * stable.variance + canary.variance
    if stable.n <= 0 or canary.n <= 0:
        return math.inf
    return _null_variance(stable, canary, stable_weight)(null)


def _crossing(gap: Callable[[float], float], inside: float, outside: float) -> float:
    """The point between `inside` (gap < 0) and `outside` (gap >= 0) where `gap` turns
    non-negative, to 1e-9: regula falsi with the Illinois step, bisection as a fallback."""
    a, b = inside, outside
    fa, fb = gap(a), gap(b)
    side = 0
    for _ in range(200):
        if abs(b - a) <= 1e-9:
            break
        c = b - fb * (b - a) / (fb - fa) if fb != fa else (a + b) / 2
        if not min(a, b) < c < max(a, b):
            c = (a + b) / 2
        fc = gap(c)
        if fc >= 0:
            b, fb = c, fc
            if side == -1:
                fa /= 2
            side = -1
        else:
            a, fa = c, fc
            if side == 1:
                fb /= 2
            side = 1
    return b


def _score_interval(
    center: float,
    variance_at: Callable[[float], float],
    *,
    largest: float,
    edges: tuple[float, float],
    tau: float,
    alpha: float,
) -> tuple[float, float]:
    """The values v within `edges` whose test, with the variance at v, does not reject:
    |center - v| < radius(variance_at(v)). `largest` bounds the variance anywhere, so the
    radius it gives brackets each end; the search starts from the fixed-variance answer."""
    t2, two_log = tau * tau, 2 * math.log(1 / alpha)

    def gap(value: float) -> float:  # cs_radius inlined: this runs a few times per end
        variance = variance_at(value)
        both = variance + t2
        return abs(value - center) - math.sqrt(
            variance * both / t2 * (two_log + math.log(both / variance))
        )

    first_guess = cs_radius(variance_at(center), tau, alpha)
    widest = cs_radius(largest, tau, alpha)
    ends = []
    for edge, sign in zip(edges, (-1.0, 1.0), strict=True):
        near = center + sign * first_guess
        far = center + sign * widest
        if sign * (near - edge) >= 0 or sign * (far - edge) >= 0:
            # The bracket reaches past the edge of the range: is the edge itself rejected?
            if gap(edge) < 0:
                ends.append(edge)
                continue
            far = edge
            near = near if sign * (near - edge) < 0 else center
        if gap(near) >= 0:
            ends.append(_crossing(gap, center, near))
        else:
            ends.append(_crossing(gap, near, far))
    return ends[0], ends[1]


Strata = Sequence[tuple[Estimate, Estimate]]


def _pool(
    strata: Strata, stable_weight: float
) -> tuple[float, float, Callable[[float | None], float], float]:
    """Per-stratum differences combined with fixed weights w_s ∝ n_stable n_canary / (n_stable +
    n_canary) (counts only, so the weights carry no information about the effect):
    (d̂ = Σ w_s d̂_s, the stable mean Σ w_s s̄_s, V(null) = Σ w_s² V_s(null), the largest V).
    Arms compared within each stratum (a step of the rollout) are compared at the same times,
    so a change over time that hits both arms (an outage, the time of day) cancels out."""
    used = [(s, c, s.n * c.n / (s.n + c.n)) for s, c in strata if s.n > 0 and c.n > 0]
    total = sum(w for _, _, w in used)
    if not used:
        return math.nan, math.nan, lambda _null: math.inf, math.inf
    parts = [(s, c, w / total) for s, c, w in used]

    def variance(null: float | None) -> float:
        return sum(
            w * w * difference_variance(s, c, null=null, stable_weight=stable_weight)
            for s, c, w in parts
        )

    return (
        sum(w * (c.mean - s.mean) for s, c, w in parts),
        sum(w * s.mean for s, _, w in parts),
        variance,
        sum(w * w * (stable_weight * 0.25 / s.n + 0.25 / c.n) for s, c, w in parts),
    )


def pooled_stable_mean(strata: Strata) -> float:
    """Stable's mean weighted as the strata are in a comparison (what a relative margin scales)."""
    return _pool(strata, 1.0)[1]


def compare(
    stable: Estimate,
    canary: Estimate,
    *,
    tau: float,
    alpha: float,
    stable_weight: float = 1.0,
    earlier: Strata = (),
) -> Comparison:
    """The difference canary - stable and its (1 - alpha) confidence sequence, stratified over
    `earlier` (stable, canary) strata when given. For rates, each candidate difference is tested
    with the variance under it (see the module text)."""
    strata = [*earlier, (stable, canary)]
    diff, _, variance_at, largest = _pool(strata, stable_weight)
    variance = variance_at(None)
    z = diff / math.sqrt(variance) if math.isfinite(variance) and variance > 0 else 0.0
    if all(s.bernoulli and c.bernoulli for s, c in strata) and math.isfinite(diff):
        low, high = _score_interval(
            diff, variance_at, largest=largest, edges=(-1.0, 1.0), tau=tau, alpha=alpha
        )
        return Comparison(diff=diff, variance=variance, low=low, high=high, z=z)
    radius = cs_radius(variance, tau, alpha)
    return Comparison(diff=diff, variance=variance, low=diff - radius, high=diff + radius, z=z)


def difference_log_lr(
    stable: Estimate,
    canary: Estimate,
    *,
    tau: float,
    null: float,
    stable_weight: float = 1.0,
    earlier: Strata = (),
) -> float:
    """ln Λ(null) for canary - stable (stratified as `compare`): the evidence against "the
    difference is `null`"."""
    diff, _, variance_at, _ = _pool([*earlier, (stable, canary)], stable_weight)
    return log_mixture_lr(diff, variance_at(null), tau, null=null)


def interval(estimate: Estimate, *, tau: float, alpha: float) -> tuple[float, float]:
    """Always-valid (1 - alpha) interval for one arm's mean (for a rate: with the variance at
    each candidate rate, a sequential Wilson interval)."""
    if estimate.bernoulli and estimate.n > 0:
        n = estimate.n
        return _score_interval(
            estimate.mean,
            lambda rate: _rate_variance(rate, n),
            largest=0.25 / n,
            edges=(0.0, 1.0),
            tau=tau,
            alpha=alpha,
        )
    radius = cs_radius(estimate.variance, tau, alpha)
    return estimate.mean - radius, estimate.mean + radius
