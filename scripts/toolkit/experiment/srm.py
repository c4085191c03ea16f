"""Sample ratio mismatch: users per variant against the configured split, by chi-square.

A chi-square goodness-of-fit test of the users per variant against the configured split.
p < 0.001 means the assignment or the counting is broken (a variant that crashes for some
users, bots, a split changed mid-experiment), so no comparison can be trusted and no winner
is declared.

Caveats: a user is counted once per process and variant (`app_experiment_units_total`), so
with several replicas a user may count once per replica, alike in both variants. The check
assumes the split did not change while the counters (or the Prometheus window) ran.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

SRM_THRESHOLD = 0.001


def chi_square_sf(statistic: float, df: int) -> float:
    """P(chi-square with `df` degrees of freedom >= statistic): scipy when installed, else the
    closed form (exact for integer df: erfc and a finite series)."""
    try:
        from scipy.stats import chi2  # noqa: PLC0415  # optional: a dev dependency
    except ImportError:
        return _chi_square_sf(statistic, df)
    return float(chi2.sf(statistic, df))


def _chi_square_sf(x: float, df: int) -> float:
    if x <= 0:
        return 1.0
    half = x / 2
    if df % 2 == 0:
        term = total = 1.0
        for k in range(1, df // 2):
            term *= half / k
            total += term
        return math.exp(-half) * total
    total = math.erfc(math.sqrt(half))
    term = math.sqrt(2 * x / math.pi) * math.exp(-half)
    for k in range(1, (df + 1) // 2):
        total += term
        term *= x / (2 * k + 1)
    return min(1.0, total)


@dataclass(frozen=True)
class SampleRatio:
    """The chi-square goodness-of-fit check of users per variant against the split."""

    observed: dict[str, float]
    expected_share: dict[str, float]
    statistic: float | None
    p_value: float | None
    flagged: bool
    note: str


def sample_ratio_check(
    observed: Mapping[str, float],
    expected_share: Mapping[str, float],
    *,
    threshold: float = SRM_THRESHOLD,
) -> SampleRatio:
    """Flag a sample ratio mismatch when p < threshold. Needs every expected count >= 5 (the
    chi-square approximation's rule of thumb) and a share above 0 for every variant."""
    total = sum(observed.values())
    expected = {k: total * expected_share[k] for k in observed}
    base = SampleRatio(dict(observed), dict(expected_share), None, None, False, "")
    if any(share <= 0 for share in expected_share.values()):
        return replace(base, note="a variant is configured at 0%: nothing to check")
    if min(expected.values()) < 5:
        return replace(base, note=f"too few users to check ({total:.0f})")
    statistic = sum((observed[k] - expected[k]) ** 2 / expected[k] for k in observed)
    p_value = chi_square_sf(statistic, len(observed) - 1)
    flagged = p_value < threshold
    note = (
        f"sample ratio mismatch: p = {p_value:.3g} < {threshold:g}"
        if flagged
        else f"users match the split (p = {p_value:.3g})"
    )
    return SampleRatio(dict(observed), dict(expected_share), statistic, p_value, flagged, note)
