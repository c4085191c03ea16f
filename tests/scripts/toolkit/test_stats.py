"""The statistics of the canary judge, checked against scipy and by simulation.

The closed forms in `scripts/toolkit/stats.py` are compared with numerical integration and root
finding; the always-valid promise (a confidence sequence that may be checked after every batch,
for as long as one likes, and still misses the truth with probability at most alpha) is checked
by simulating long A/A streams, next to a fixed-sample z-interval that breaks that promise.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import integrate, optimize
from scipy.stats import norm

from app.core.metrics import SCORE_BUCKETS
from scripts.toolkit.stats import (
    Estimate,
    compare,
    cs_radius,
    difference_log_lr,
    histogram_mean,
    interval,
    log_mixture_lr,
    proportion,
)

ALPHA = 0.05
WIDTH = 0.05  # SCORE_BUCKETS are 0.05 wide

# --- the mixture likelihood ratio and its confidence sequence -------------------------------


def reference_log_mixture_lr(diff: float, variance: float, tau: float, null: float) -> float:
    """ln ∫ N(d̂; d, V) / N(d̂; d0, V) · N(d; d0, τ²) dd by quadrature, scaled by the integrand's
    numerically found maximum so that large ratios do not overflow."""
    sd = math.sqrt(variance)

    def log_integrand(d: float) -> float:
        return float(
            norm.logpdf(diff, d, sd) - norm.logpdf(diff, null, sd) + norm.logpdf(d, null, tau)
        )

    spread = 40 * (tau + sd) + abs(diff - null)
    peak = optimize.minimize_scalar(
        lambda d: -log_integrand(d),
        bounds=(null - spread, null + spread),
        method="bounded",
        options={"xatol": 1e-15},
    )
    mode, top = float(peak.x), -float(peak.fun)
    # The integrand's width from its curvature at the mode; 40 widths hold all of its mass.
    step = 1e-3 * min(tau, sd)
    curvature = -(log_integrand(mode + step) - 2 * top + log_integrand(mode - step)) / step**2
    reach = 40 / math.sqrt(curvature)
    value, _ = integrate.quad(
        lambda d: math.exp(log_integrand(d) - top),
        mode - reach,
        mode + reach,
        points=[mode],
        limit=500,
        epsabs=0,
        epsrel=1e-12,
    )
    return top + math.log(value)


GRID = [
    (diff, variance, tau, null)
    for diff in (-0.05, 0.0, 0.013, 0.2)
    for variance in (1e-6, 1e-4, 1e-2)
    for tau in (0.005, 0.05, 0.5)
    for null in (0.0, 0.02, -0.1)
]


@pytest.mark.parametrize(("diff", "variance", "tau", "null"), GRID)
def test_log_mixture_lr_is_the_integrated_likelihood_ratio(
    diff: float, variance: float, tau: float, null: float
) -> None:
    expected = reference_log_mixture_lr(diff, variance, tau, null)
    assert log_mixture_lr(diff, variance, tau, null=null) == pytest.approx(
        expected, rel=1e-7, abs=1e-7
    )


def test_log_mixture_lr_refuses_a_degenerate_variance_or_tau() -> None:
    with pytest.raises(ValueError, match="positive"):
        log_mixture_lr(0.1, 0.0, 0.05)
    with pytest.raises(ValueError, match="positive"):
        log_mixture_lr(0.1, 1e-4, 0.0)


def boundary_crossings(
    log_lr: Callable[[float], float], center: float, alpha: float, reach: float
) -> tuple[float, float]:
    """Where ln Λ(d0) reaches ln(1/alpha) below and above `center` (scipy's brentq)."""
    threshold = math.log(1 / alpha)
    low = optimize.brentq(lambda d0: log_lr(d0) - threshold, center - reach, center, xtol=1e-14)
    high = optimize.brentq(lambda d0: log_lr(d0) - threshold, center, center + reach, xtol=1e-14)
    return low, high


@pytest.mark.parametrize(
    ("stable", "canary", "tau", "alpha"),
    [
        (Estimate(0.70, 4e-5, 4000), Estimate(0.66, 3e-4, 500), 0.05, 0.05),
        (Estimate(0.70, 4e-5, 4000), Estimate(0.70, 3e-4, 500), 0.05, 0.01),
        (Estimate(1e-4, 1e-13, 9000), Estimate(1.3e-4, 2e-12, 300), 5e-5, 0.01),
        (Estimate(3.0, 0.5, 40), Estimate(-1.0, 0.7, 30), 1.0, 0.2),
    ],
)
def test_confidence_sequence_ends_where_the_mixture_ratio_reaches_one_over_alpha(
    stable: Estimate, canary: Estimate, tau: float, alpha: float
) -> None:
    result = compare(stable, canary, tau=tau, alpha=alpha)
    variance = stable.variance + canary.variance
    assert result.diff == canary.mean - stable.mean
    assert result.variance == variance
    low, high = boundary_crossings(
        lambda d0: log_mixture_lr(result.diff, variance, tau, null=d0),
        result.diff,
        alpha,
        reach=100 * (math.sqrt(variance) + tau),
    )
    assert result.low == pytest.approx(low, rel=1e-9, abs=1e-15)
    assert result.high == pytest.approx(high, rel=1e-9, abs=1e-15)
    assert result.high - result.diff == pytest.approx(cs_radius(variance, tau, alpha), rel=1e-12)
    # One arm on its own: the same radius around its mean.
    one_low, one_high = interval(canary, tau=tau, alpha=alpha)
    assert (one_low + one_high) / 2 == pytest.approx(canary.mean)
    assert one_high - canary.mean == pytest.approx(cs_radius(canary.variance, tau, alpha))


@pytest.mark.parametrize(
    ("stable", "canary", "tau", "alpha"),
    [
        ((48, 4465), (0, 235), 0.02, 0.01),  # a canary with no error yet
        ((480, 44650), (30, 2350), 0.02, 0.05),
        ((900, 10000), (160, 1000), 0.05, 0.01),
        ((2, 500), (3, 400), 0.02, 0.05),
    ],
)
def test_rate_confidence_sequence_ends_where_the_score_test_rejects(
    stable: tuple[float, float], canary: tuple[float, float], tau: float, alpha: float
) -> None:
    """For rates, each null difference is tested with the variance under that null; the
    interval's ends are where that test's ln Λ reaches ln(1/alpha)."""
    s, c = proportion(*stable), proportion(*canary)
    result = compare(s, c, tau=tau, alpha=alpha)
    low, high = boundary_crossings(
        lambda d0: difference_log_lr(s, c, tau=tau, null=d0),
        result.diff,
        alpha,
        reach=min(1 - result.diff, 1 + result.diff) - 1e-9,
    )
    assert result.low == pytest.approx(low, abs=1e-8)
    assert result.high == pytest.approx(high, abs=1e-8)


def test_rate_interval_of_one_arm_is_the_sequential_wilson_interval() -> None:
    """Each end p0 is where |p̂ - p0| equals the radius with the variance at p0."""
    estimate = proportion(40, 400)
    low, high = interval(estimate, tau=0.02, alpha=0.01)
    for end in (low, high):
        radius = cs_radius(end * (1 - end) / 400, 0.02, 0.01)
        assert abs(end - estimate.mean) == pytest.approx(radius, abs=1e-8)
    # Wider above than below: the variance grows towards 0.5.
    assert high - estimate.mean > estimate.mean - low > 0


def test_rate_interval_near_zero_stops_at_zero() -> None:
    """2 errors in 400: no rate down to 0 is rejected, so the interval starts at 0 exactly;
    above, the variance at the candidate rate (not at 0.5%) sets the end."""
    estimate = proportion(2, 400)
    low, high = interval(estimate, tau=0.02, alpha=0.01)
    assert low == 0.0
    assert high - estimate.mean == pytest.approx(
        cs_radius(high * (1 - high) / 400, 0.02, 0.01), abs=1e-8
    )
    assert high - estimate.mean > cs_radius(estimate.variance, 0.02, 0.01)


def test_an_arm_without_data_gives_an_unbounded_interval() -> None:
    assert cs_radius(math.inf, 0.05, 0.05) == math.inf
    assert proportion(0, 0).variance == math.inf
    assert histogram_mean(SCORE_BUCKETS, (0.0,) * len(SCORE_BUCKETS), 0.0).n == 0


# --- estimates: proportions and histogram means ---------------------------------------------


@pytest.mark.parametrize(("hits", "total"), [(30, 1000), (500, 1000), (7, 250), (940, 1000)])
def test_proportion_matches_the_binomial_mean_and_variance(hits: int, total: int) -> None:
    estimate = proportion(hits, total)
    p = hits / total
    assert estimate.mean == p
    assert estimate.n == total
    assert estimate.bernoulli
    # Half a pseudo-event on each side moves the variance by about 1 / (2 · hits) at most.
    binomial = p * (1 - p) / total
    assert estimate.variance == pytest.approx(binomial, rel=1 / (2 * min(hits, total - hits)))


@pytest.mark.parametrize("total", [1, 200, 10_000])
def test_proportion_variance_is_never_zero_at_zero_or_all_hits(total: int) -> None:
    for hits in (0, total):
        estimate = proportion(hits, total)
        assert estimate.mean == hits / total
        # The floor: a rate of half an event in total + 1.
        smoothed = 0.5 / (total + 1)
        assert estimate.variance == pytest.approx(smoothed * (1 - smoothed) / total)
        assert estimate.variance > 0
    # And so two clean arms still compare to a finite interval around zero.
    result = compare(proportion(0, total), proportion(0, total), tau=0.02, alpha=ALPHA)
    assert result.low < 0 < result.high
    assert math.isfinite(result.z)


def bin_scores(scores: NDArray[np.float64]) -> tuple[float, ...]:
    """Per-bucket counts of `scores` as the service's histogram keeps them (value <= le)."""
    index = np.searchsorted(np.asarray(SCORE_BUCKETS), scores, side="left")
    return tuple(float(c) for c in np.bincount(index, minlength=len(SCORE_BUCKETS)))


@pytest.mark.parametrize(("a", "b"), [(2, 5), (5, 2), (2, 2), (8, 2), (1, 1)])
def test_histogram_mean_is_exact_and_its_variance_close_to_the_raw_data(a: float, b: float) -> None:
    """Beta-distributed scores binned into the service's SCORE_BUCKETS. The mean is sum / count,
    exactly. The variance comes from the buckets (midpoints plus width²/12 of spread within a
    bucket): for a density smooth on the scale of a bucket, Sheppard's correction says the
    midpoints alone already add about width²/12 to the variance, so the estimate should exceed
    the true variance by about width²/6 (4e-4 here) — never fall below it, and stay within
    width²/4 above it, a few percent of these variances."""
    rng = np.random.default_rng(20240607)
    scores = rng.beta(a, b, 200_000)
    estimate = histogram_mean(SCORE_BUCKETS, bin_scores(scores), float(scores.sum()))
    assert estimate.n == scores.size
    assert estimate.mean == pytest.approx(scores.mean(), rel=1e-12)
    per_answer = estimate.variance * estimate.n
    true = float(scores.var())
    assert true - 1e-5 <= per_answer <= true + WIDTH**2 / 4


def test_histogram_variance_with_scores_piled_on_bucket_edges() -> None:
    """The service's own score: refusals at exactly 0 and perfect answers at exactly 1 sit on
    bucket edges, where the midpoint is half a bucket off. Each such observation is understated
    by at most width · |x - mean|; with a quarter refusals and 40% perfect answers that comes
    to about 8% of the variance (4% of the interval's width), which the coverage simulation
    below and the A/A benchmark show the test carries."""
    rng = np.random.default_rng(7)
    n = 100_000
    kind = rng.choice(3, size=n, p=[0.25, 0.40, 0.35])  # refusal, perfect, partly grounded
    scores = np.choose(kind, [np.zeros(n), np.ones(n), 0.3 + 0.7 * rng.beta(10, 2, n)])
    estimate = histogram_mean(SCORE_BUCKETS, bin_scores(scores), float(scores.sum()))
    true = float(scores.var())
    per_answer = estimate.variance * estimate.n
    worst = WIDTH * float(np.abs(scores - scores.mean()).mean())
    assert true - worst <= per_answer <= true
    assert per_answer >= 0.9 * true


def test_histogram_with_everything_in_one_bucket_still_has_a_variance() -> None:
    """50 answers in (0.50, 0.55] averaging its midpoint: the spread of a uniform over the
    bucket, never zero."""
    counts = tuple(50.0 if bound == 0.55 else 0.0 for bound in SCORE_BUCKETS)
    estimate = histogram_mean(SCORE_BUCKETS, counts, 50 * 0.525)
    assert estimate.mean == pytest.approx(0.525)
    assert estimate.variance == pytest.approx(WIDTH**2 / 12 / 50)


# --- time-uniform coverage by simulation ----------------------------------------------------

RUNS = 800
MC_TOLERANCE = 3 * math.sqrt(ALPHA * (1 - ALPHA) / RUNS)  # three Monte Carlo standard errors


def z_interval_misses(diff: NDArray[np.float64], variance: NDArray[np.float64]) -> float:
    """Share of runs in which a fixed-sample 95% z-interval, checked at every look, ever
    excludes the true difference 0 (looks with no variance yet are skipped)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.abs(diff) / np.sqrt(variance)
    return float(np.mean(np.any((variance > 0) & (z > 1.959964), axis=1)))


def test_rate_confidence_sequence_covers_at_every_look_over_a_long_horizon() -> None:
    """A/A error rates as a canary at 5% sees them: 1% errors in both arms, 200 answers per
    interval, 100 intervals, checked after every interval once each arm has the policy's 200
    answers. Few canary errors is where a plain Wald variance breaks (0 errors -> no variance);
    the score-test variance keeps the sequence valid."""
    rng = np.random.default_rng(11)
    looks, per_look, canary_share, rate = 100, 200, 0.05, 0.01
    n_canary = per_look * canary_share * np.arange(1, looks + 1)
    n_stable = per_look * (1 - canary_share) * np.arange(1, looks + 1)
    hits_canary = np.cumsum(rng.binomial(int(per_look * canary_share), rate, (RUNS, looks)), 1)
    hits_stable = np.cumsum(
        rng.binomial(int(per_look * (1 - canary_share)), rate, (RUNS, looks)), 1
    )
    first = int(np.argmax(n_canary >= 200))

    missed = 0
    for run in range(RUNS):
        for look in range(first, looks):
            result = compare(
                proportion(float(hits_stable[run, look]), float(n_stable[look])),
                proportion(float(hits_canary[run, look]), float(n_canary[look])),
                tau=0.02,
                alpha=ALPHA,
            )
            if not result.low <= 0.0 <= result.high:
                missed += 1
                break
    sequential = missed / RUNS

    p_c, p_s = hits_canary / n_canary, hits_stable / n_stable
    naive = z_interval_misses(
        (p_c - p_s)[:, first:], (p_c * (1 - p_c) / n_canary + p_s * (1 - p_s) / n_stable)[:, first:]
    )
    assert sequential <= ALPHA + MC_TOLERANCE, (sequential, naive)
    assert naive >= 4 * ALPHA, (sequential, naive)


def bimodal_scores(
    rng: np.random.Generator, shape: tuple[int, int], refusals: float, a: float, b: float
) -> NDArray[np.float64]:
    """Scores like the service's: a share of refusals at exactly 0, the rest Beta(a, b)."""
    return np.where(rng.random(shape) < refusals, 0.0, rng.beta(a, b, shape))


def test_score_confidence_sequence_covers_at_every_look_over_a_long_horizon() -> None:
    """Quality scores with equal means but different shapes: stable refuses 25% and scores
    Beta(18, 2) otherwise (mean 0.675), canary refuses 30% and scores Beta(27, 1) otherwise
    (mean 0.675, much of it piled near 1). 20% canary, 200 answers per look, 100 looks."""
    rng = np.random.default_rng(12)
    looks, n_stable, n_canary = 100, 160, 40
    bounds = np.asarray(SCORE_BUCKETS)
    buckets = len(SCORE_BUCKETS)
    arms = {"stable": (n_stable, 0.25, 18.0, 2.0), "canary": (n_canary, 0.30, 27.0, 1.0)}
    counts = {arm: np.zeros((RUNS, buckets)) for arm in arms}
    sums = {arm: np.zeros(RUNS) for arm in arms}
    squares = {arm: np.zeros(RUNS) for arm in arms}
    alive = np.ones(RUNS, dtype=bool)
    z_diff, z_var = np.zeros((RUNS, looks)), np.zeros((RUNS, looks))
    for look in range(looks):
        for arm, (size, refusals, a, b) in arms.items():
            scores = bimodal_scores(rng, (RUNS, size), refusals, a, b)
            index = (
                np.searchsorted(bounds, scores, side="left") + buckets * np.arange(RUNS)[:, None]
            )
            counts[arm] += np.bincount(index.ravel(), minlength=RUNS * buckets).reshape(
                RUNS, buckets
            )
            sums[arm] += scores.sum(axis=1)
            squares[arm] += (scores**2).sum(axis=1)
        seen = {"stable": n_stable * (look + 1), "canary": n_canary * (look + 1)}
        means = {arm: sums[arm] / seen[arm] for arm in arms}
        z_diff[:, look] = means["canary"] - means["stable"]
        z_var[:, look] = sum(
            (squares[arm] / seen[arm] - means[arm] ** 2) / seen[arm] for arm in arms
        )
        if seen["canary"] < 200:
            continue
        for run in np.flatnonzero(alive):
            stable, canary = (
                histogram_mean(SCORE_BUCKETS, tuple(counts[arm][run]), float(sums[arm][run]))
                for arm in ("stable", "canary")
            )
            result = compare(stable, canary, tau=0.05, alpha=ALPHA)
            if not result.low <= 0.0 <= result.high:
                alive[run] = False
    sequential = float(np.mean(~alive))
    first = int(np.ceil(200 / n_canary)) - 1
    naive = z_interval_misses(z_diff[:, first:], z_var[:, first:])
    assert sequential <= ALPHA + MC_TOLERANCE, (sequential, naive)
    assert naive >= 4 * ALPHA, (sequential, naive)
