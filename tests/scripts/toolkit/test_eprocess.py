"""The exact betting tests: closed forms, validity against their nulls by simulation, power."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom

from scripts.toolkit.eprocess import GRID, log_evalue
from scripts.toolkit.judge import judge, limit_evidence, share_evidence
from scripts.toolkit.metrics import Ratio
from scripts.toolkit.policy import Policy
from scripts.toolkit.stats import compare, proportion
from tests.support.policy import example_policy
from tests.support.synthetic import by_name, exact_arm


def test_the_wealth_is_the_average_of_the_fixed_bet_products() -> None:
    """(1 + λ(1 - m))^hits (1 - λm)^misses per bet, averaged over the grid."""
    hits, misses, m = 7, 13, 0.05
    direct = [(1 + c / m * (1 - m)) ** hits * (1 - c / m * m) ** misses for c in GRID]
    got = log_evalue([(1.0, hits), (0.0, misses)], null=m, low=0, high=1, higher_is_worse=True)
    assert got == pytest.approx(math.log(sum(direct) / len(direct)))


@pytest.mark.parametrize(
    ("rate", "null", "higher_is_worse"), [(0.05, 0.05, True), (0.5, 0.5, False)]
)
def test_false_alarms_stay_under_alpha_at_every_look(
    rate: float, null: float, higher_is_worse: bool
) -> None:
    """Under the null (the mean exactly at the limit), looked at after every observation for
    2,000 observations, the wealth reaches 1/alpha in at most alpha of the runs."""
    rng = np.random.default_rng(3)
    alpha, runs, n = 0.05, 400, 2000
    alarms = 0
    for _ in range(runs):
        hits = np.cumsum(rng.random(n) < rate)
        looks = range(0, n, 10)
        if any(
            log_evalue(
                [(1.0, hits[i]), (0.0, i + 1 - hits[i])],
                null=null, low=0, high=1, higher_is_worse=higher_is_worse,
            ) >= math.log(1 / alpha)
            for i in looks
        ):  # fmt: skip
            alarms += 1
    # alpha plus three binomial standard errors
    assert alarms / runs <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / runs)


def test_a_catastrophe_is_found_in_a_handful_of_answers() -> None:
    """Half the answers failing against a 5% limit: a few failures suffice at alpha 0.002; a
    fixed-sample binomial test at the same level needs about as many (scipy)."""
    threshold = math.log(1 / 0.002)
    n = next(
        n for n in range(2, 100)
        if log_evalue([(1.0, n / 2), (0.0, n / 2)], null=0.05, low=0, high=1,
                      higher_is_worse=True) >= threshold
    )  # fmt: skip
    assert n <= 14
    fixed = next(k for k in range(1, 100) if binom.sf(k // 2 - 1, k, 0.05) <= 0.002)
    assert n <= 3 * fixed


def test_a_histogram_is_read_at_the_bucket_edge_that_keeps_the_test_valid(
    policy: Policy,
) -> None:
    """Scores spread inside buckets: the test of a lower limit uses each bucket's upper edge,
    so a canary whose scores all sit just under the 0.5 limit's bucket edge is not rejected."""
    metric = policy.measures()["quality_score"]
    data = exact_arm(4000, refusals=0.0, answer_scores=(0.5,))["quality_score"]  # all at 0.5
    assert limit_evidence(metric, data) < 0.1  # no evidence of being below 0.5
    assert limit_evidence(metric, data, breach=False) < 0.1  # nor of being above it


@pytest.fixture(scope="module")
def policy() -> Policy:
    """The example policy of the judge tests."""
    return example_policy()


def test_strata_compare_within_time_so_a_shared_outage_cancels_out(policy: Policy) -> None:
    """A step at 5% without errors, then a step at 50% during an outage (30% errors on both
    arms): cumulated, the canary looks 13 points worse (Simpson's paradox); by step, equal."""
    first = (exact_arm(19_000, errors=0.0), exact_arm(1000, errors=0.0))
    second = (exact_arm(5000, errors=0.3), exact_arm(5000, errors=0.3))
    cumulative = compare(
        proportion(0.3 * 5000, 24_000), proportion(0.3 * 5000, 6000), tau=0.02, alpha=0.01
    )
    assert cumulative.low > 0.1
    verdict = judge(policy, *second, earlier=[first])
    error_rate = by_name(verdict)["error_rate"]
    assert error_rate.effect is not None and abs(error_rate.effect.estimate) < 1e-9
    assert error_rate.degraded  # both beyond the 5% limit in the outage step: hold
    assert verdict.decision == "hold"


def test_a_canary_getting_far_less_than_its_weight_is_rolled_back(policy: Policy) -> None:
    stable = exact_arm(2000)
    starved = {**exact_arm(10), "error_rate": Ratio(0, 10)}
    verdict = judge(policy, stable, starved, weight=0.2)
    assert verdict.decision == "rollback"
    assert any(r.startswith("sample ratio") for r in verdict.reasons)
    assert judge(policy, exact_arm(1600), exact_arm(400), weight=0.2).decision != "rollback"


def test_the_sample_ratio_test_keeps_its_alpha_under_its_null() -> None:
    """Answers split at exactly half the weight (the edge of the null), looked at every 20."""
    rng = np.random.default_rng(5)
    alpha, runs, weight = 0.05, 300, 0.1
    alarms = 0
    for _ in range(runs):
        canary = np.cumsum(rng.random(3000) < weight / 2)
        alarms += any(
            log_evalue(
                [(1.0, i + 1 - canary[i]), (0.0, canary[i])],
                null=1 - weight / 2, low=0, high=1, higher_is_worse=True,
            ) >= math.log(1 / alpha)
            for i in range(19, 3000, 20)
        )  # fmt: skip
    assert alarms / runs <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / runs)


def test_the_share_test_stays_under_alpha_through_a_shared_outage() -> None:
    """Both arms' failure rate swings (1%, then 50% for a sixth of the time, then a slow
    drift), the canary gets each answer with probability 5%, and the share of failures it
    carries is tested at every look: under this null it crosses 1/alpha in at most alpha of
    the runs, outage or not (the limit test alone would cross in most)."""
    rng = np.random.default_rng(11)
    alpha, runs, looks, weight = 0.05, 600, 120, 0.05
    metric = next(m for m in example_policy().metrics if m.name == "error_rate")
    rates = np.full(looks, 0.01)
    rates[40:60] = 0.5
    rates[60:] = 0.01 + 0.03 * np.sin(np.linspace(0, 3, looks - 60)) ** 2
    alarms = limit_alarms = 0
    for _ in range(runs):
        answers = rng.poisson(20, looks)
        to_canary = rng.binomial(answers, weight)
        c_fail = np.cumsum(rng.binomial(to_canary, rates))
        s_fail = np.cumsum(rng.binomial(answers - to_canary, rates))
        c_n, s_n = np.cumsum(to_canary), np.cumsum(answers - to_canary)
        share = [
            share_evidence(metric, Ratio(s_fail[i], s_n[i]), Ratio(c_fail[i], c_n[i]), weight)
            for i in range(looks)
        ]
        alarms += max(v or 0.0 for v in share) >= math.log(1 / alpha)
        limit = max(limit_evidence(metric, Ratio(c_fail[i], c_n[i])) for i in range(looks))
        limit_alarms += limit >= math.log(1 / alpha)
    # alpha plus three binomial standard errors
    assert alarms / runs <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / runs)
    assert limit_alarms / runs > 0.5


def test_the_share_test_finds_a_canary_failing_half_its_answers_in_a_few_failures() -> None:
    """At 5% weight, a canary failing 50% of its answers against stable's 1%: the share test
    crosses after a handful of the canary's failures."""
    metric = next(m for m in example_policy().metrics if m.name == "error_rate")
    threshold = math.log(3 * 7 / 0.05)  # the default policy's: judged steps x tests / alpha
    for failures in range(1, 20):
        evidence = share_evidence(metric, Ratio(3, 300), Ratio(failures, 2 * failures), 0.05)
        if evidence is not None and evidence >= threshold:
            break
    assert failures <= 5
