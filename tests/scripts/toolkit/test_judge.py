"""The judge on synthetic observations with known answers, under a policy with known thresholds."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from contract.metrics import SCORE_BUCKETS
from scripts.toolkit.analysis import Effect, margin
from scripts.toolkit.judge import (
    UNITS,
    MetricVerdict,
    critical_tests,
    design_effect,
    judge,
    judge_metric,
    thinned,
)
from scripts.toolkit.metrics import ArmData, Histogram, Ratio
from scripts.toolkit.policy import MetricPolicy, Policy
from tests.support.policy import example_policy
from tests.support.synthetic import by_name, exact_arm, histogram


@pytest.fixture(scope="module")
def policy() -> Policy:
    """The example policy: the thresholds these tests were written for."""
    return example_policy()


def effect_of(metric: MetricVerdict) -> Effect:
    """The metric's effect, which it must have."""
    assert metric.effect is not None
    return metric.effect


CRITICAL = ("error_rate", "slow_answers", "quality_score")


# --- identical arms -------------------------------------------------------------------------


@pytest.mark.parametrize("canary_n", [50, 199])
def test_identical_arms_with_too_few_answers_hold_as_insufficient(
    policy: Policy, canary_n: int
) -> None:
    verdict = judge(policy, exact_arm(19 * canary_n), exact_arm(canary_n))
    assert verdict.decision == "hold"
    metrics = by_name(verdict)
    for name in CRITICAL:
        assert metrics[name].verdict == "insufficient"
        assert metrics[name].effect is None  # nothing estimated, nothing claimed
    assert metrics["error_rate"].reason.startswith(f"canary has {canary_n} of 200 samples")
    assert any(r.startswith("error_rate: canary has") for r in verdict.reasons)


def test_a_short_stable_arm_is_insufficient_too(policy: Policy) -> None:
    verdict = judge(policy, exact_arm(150), exact_arm(5000))
    assert verdict.decision == "hold"
    assert by_name(verdict)["error_rate"].reason == "stable has 150 of 200 samples"


@pytest.mark.parametrize("canary_n", [200, 300, 600, 1000, 2000, 5000, 20_000])
def test_identical_arms_never_roll_back(policy: Policy, canary_n: int) -> None:
    verdict = judge(policy, exact_arm(19 * canary_n), exact_arm(canary_n))
    assert verdict.decision != "rollback"
    assert all(m.verdict != "fail" for m in verdict.metrics)


def test_identical_arms_hold_until_the_quality_interval_fits_the_margin(policy: Policy) -> None:
    """With the score's variance (~0.15), the interval needs about 1,500 canary answers to fit
    inside the 0.05 margin; before that the judge holds, after it promotes."""
    early = judge(policy, exact_arm(19 * 600), exact_arm(600))
    assert early.decision == "hold"
    assert by_name(early)["quality_score"].verdict == "inconclusive"
    late = judge(policy, exact_arm(19 * 3000), exact_arm(3000))
    assert late.decision == "promote"
    assert all(by_name(late)[name].verdict == "pass" for name in CRITICAL)


def test_seeded_aa_streams_never_roll_back(policy: Policy) -> None:
    """Random A/A data, judged after every interval of 600 answers (5% canary) for 30 intervals,
    40 times over: the judge never rolls back."""
    rng = np.random.default_rng(5)
    for _ in range(40):
        stable: dict[str, float] = dict.fromkeys(("n", "errors", "slow", "down", "rated"), 0.0)
        canary = dict(stable)
        scores: dict[str, np.ndarray] = {"stable": np.zeros(4), "canary": np.zeros(4)}
        for _ in range(30):
            for name, counts, size in (("stable", stable, 570), ("canary", canary, 30)):
                errors = rng.binomial(size, 0.01)
                answered = size - errors
                counts["n"] += size
                counts["errors"] += errors
                counts["slow"] += rng.binomial(answered, 0.08)
                rated = rng.binomial(answered, 0.3)
                counts["rated"] += rated
                counts["down"] += rng.binomial(rated, 0.2)
                scores[name] += rng.multinomial(answered, [0.25, 0.25, 0.25, 0.25])
            data = {}
            for name, counts in (("stable", stable), ("canary", canary)):
                zero, low, mid, high = scores[name]
                data[name] = {
                    "error_rate": Ratio(counts["errors"], counts["n"]),
                    "slow_answers": Ratio(counts["slow"], counts["n"] - counts["errors"]),
                    "quality_score": histogram(
                        SCORE_BUCKETS, {0.0: zero, 0.8: low, 0.9: mid, 1.0: high}
                    ),
                    "negative_feedback": Ratio(counts["down"], counts["rated"]),
                }
            assert judge(policy, data["stable"], data["canary"]).decision != "rollback"


# --- regressions that must roll back --------------------------------------------------------


def test_an_erroring_canary_rolls_back_naming_error_rate(policy: Policy) -> None:
    verdict = judge(policy, exact_arm(19 * 1000), exact_arm(1000, errors=0.10))
    assert verdict.decision == "rollback"
    metrics = by_name(verdict)
    assert metrics["error_rate"].verdict == "fail"
    assert [r.split(":")[0] for r in verdict.reasons] == ["error_rate"]
    assert "worse than stable by more than 0.02" in metrics["error_rate"].reason


def test_a_canary_with_lower_quality_rolls_back_naming_quality_score(policy: Policy) -> None:
    """Mean score 0.675 on stable, 0.475 on the canary (it refuses 47% instead of 25%)."""
    worse = 1 - 0.475 / 0.9
    verdict = judge(policy, exact_arm(19 * 1000), exact_arm(1000, refusals=worse))
    assert verdict.decision == "rollback"
    metrics = by_name(verdict)
    assert effect_of(metrics["quality_score"]).estimate == pytest.approx(-0.2)
    assert metrics["quality_score"].verdict == "fail"
    assert [r.split(":")[0] for r in verdict.reasons] == ["quality_score"]


def test_a_canary_beyond_the_limit_rolls_back_while_stable_is_within_it(policy: Policy) -> None:
    """8% errors on the canary, 3% on stable: the limit (5%) decides, whatever the margin."""
    verdict = judge(policy, exact_arm(16_000, errors=0.03), exact_arm(4000, errors=0.08))
    assert verdict.decision == "rollback"
    error_rate = by_name(verdict)["error_rate"]
    assert error_rate.verdict == "fail"
    assert error_rate.reason.startswith("above the limit 0.05")


def test_when_stable_breaches_the_limit_too_the_platform_is_degraded_and_the_judge_holds(
    policy: Policy,
) -> None:
    """8% errors on the canary, 7% on stable: within the margin, both beyond the limit. Rolling
    back would help nobody: hold, and say why."""
    verdict = judge(policy, exact_arm(16_000, errors=0.07), exact_arm(4000, errors=0.08))
    assert verdict.decision == "hold"
    error_rate = by_name(verdict)["error_rate"]
    assert error_rate.degraded and not verdict.no_harm
    assert "the platform is degraded: above the limit 0.05, stable breaches error_rate too" in (
        error_rate.reason
    )


def test_a_quality_limit_below_which_the_canary_fails(policy: Policy) -> None:
    """higher_is_better limits read the other way: a canary scoring 0.40 on average is below
    the 0.5 floor; with stable as low, the platform is degraded."""
    canary = exact_arm(4000, refusals=1 - 0.40 / 0.9)
    quality = by_name(judge(policy, exact_arm(16_000), canary))["quality_score"]
    assert quality.verdict == "fail"
    assert quality.reason.startswith("below the limit 0.5")
    both = by_name(judge(policy, exact_arm(16_000, refusals=1 - 0.42 / 0.9), canary))[
        "quality_score"
    ]
    assert both.degraded and both.verdict == "inconclusive"


def test_a_failing_advisory_metric_never_rolls_back(policy: Policy) -> None:
    """Twice the cost and two and a half times the down-votes: reported as failing, but the
    critical metrics pass, so the canary is promoted."""
    verdict = judge(policy, exact_arm(19 * 5000), exact_arm(5000, cost=2e-4, down=0.5))
    metrics = by_name(verdict)
    assert metrics["cost_per_answer"].verdict == "fail"
    assert metrics["negative_feedback"].verdict == "fail"
    assert not metrics["cost_per_answer"].critical
    assert verdict.decision == "promote"


def test_a_failing_critical_metric_rolls_back_even_when_another_is_missing(policy: Policy) -> None:
    canary = exact_arm(1000, errors=0.10)
    del canary["quality_score"]
    verdict = judge(policy, exact_arm(19 * 1000), canary)
    assert verdict.decision == "rollback"
    assert by_name(verdict)["quality_score"].verdict == "missing"


# --- missing data ---------------------------------------------------------------------------


def test_missing_canary_data_holds(policy: Policy) -> None:
    canary = exact_arm(5000)
    del canary["quality_score"]
    verdict = judge(policy, exact_arm(19 * 5000), canary)
    assert verdict.decision == "hold"
    quality = by_name(verdict)["quality_score"]
    assert quality.verdict == "missing"
    assert "quality_score: no data for one of the arms" in verdict.reasons


@pytest.mark.parametrize("empty", ["stable", "canary"])
def test_an_arm_without_any_data_holds(policy: Policy, empty: str) -> None:
    arms = {"stable": exact_arm(19 * 5000), "canary": exact_arm(5000)}
    arms[empty] = {}
    verdict = judge(policy, arms["stable"], arms["canary"])
    assert verdict.decision == "hold"
    assert {m.verdict for m in verdict.metrics} == {"missing"}


def test_an_arm_that_saw_nothing_is_insufficient_and_serialises(policy: Policy) -> None:
    """A canary that is deployed but got no answers yet: zero totals, no NaN in the record."""
    nothing: ArmData = {
        "error_rate": Ratio(0, 0),
        "slow_answers": Ratio(0, 0),
        "quality_score": Histogram((), (), 0.0),
        "cost_per_answer": Histogram((), (), 0.0),
        "negative_feedback": Ratio(0, 0),
    }
    verdict = judge(policy, exact_arm(5000), nothing)
    assert verdict.decision == "hold"
    record = verdict.to_dict()
    json.dumps(record, allow_nan=False)
    assert all(m["canary_value"] is None for m in record["metrics"])


# --- the decision record --------------------------------------------------------------------


def test_decision_record_fields(policy: Policy) -> None:
    verdict = judge(policy, exact_arm(19 * 1000), exact_arm(1000, errors=0.10))
    # error margin + limit, slow margin, quality margin + limit, and the sample ratio
    assert critical_tests(policy) == 6
    record = verdict.to_dict()
    assert json.loads(json.dumps(record, allow_nan=False)) == record
    assert record["decision"] == "rollback"
    for metric in record["metrics"]:
        assert metric["alpha"] == pytest.approx(policy.alpha / 6)
        assert metric["threshold"] == pytest.approx(math.log(6 / policy.alpha))
        effect = metric["effect"]
        assert effect["ci_low"] <= effect["estimate"] <= effect["ci_high"]
        assert effect["level"] == pytest.approx(1 - policy.alpha / 6)
        assert metric["stable_n"] > 0 and metric["canary_n"] > 0
    error_rate = next(m for m in record["metrics"] if m["name"] == "error_rate")
    assert error_rate["effect"]["estimate"] == pytest.approx(0.09)
    assert error_rate["margin"] == 0.02
    assert error_rate["limit"] == 0.05
    assert error_rate["stable_value"] == pytest.approx(0.01)
    assert error_rate["canary_value"] == pytest.approx(0.10)
    # The statistic is the evidence against "worse by exactly the margin": past the threshold
    # exactly when the margin lies outside the interval.
    assert error_rate["statistic"] >= error_rate["threshold"]
    assert error_rate["effect"]["ci_low"] > error_rate["margin"]


def test_statistic_stays_under_its_threshold_while_inconclusive(policy: Policy) -> None:
    verdict = judge(policy, exact_arm(19 * 600), exact_arm(600))
    quality = by_name(verdict)["quality_score"]
    assert quality.verdict == "inconclusive"
    assert quality.statistic is not None and quality.threshold is not None
    assert quality.statistic < quality.threshold
    assert quality.margin is not None
    assert effect_of(quality).low < -quality.margin < effect_of(quality).high


def test_alpha_is_split_over_the_critical_tests_only(policy: Policy) -> None:
    """Making cost critical adds one test (its margin); an advisory metric adds none."""
    data = policy.model_dump()
    for metric in data["metrics"]:
        if metric["name"] == "cost_per_answer":
            metric["critical"] = True
    assert critical_tests(Policy.model_validate(data)) == 7
    assert judge(policy, exact_arm(9000), exact_arm(1000)).metrics[0].alpha == pytest.approx(
        0.05 / 6
    )


# --- relative margins -----------------------------------------------------------------------


def cost_metric(**changes: object) -> MetricPolicy:
    """A critical cost metric with a margin of 25% of stable's mean."""
    fields: dict[str, object] = {
        "name": "cost_per_answer",
        "kind": "mean",
        "histogram": "app_answer_cost_usd",
        "direction": "lower_is_better",
        "max_relative_regression": 0.25,
        "effect_size": 0.00005,
        "critical": True,
    }
    fields.update(changes)
    return MetricPolicy.model_validate(fields)


def test_relative_margin_is_a_share_of_the_stable_mean(policy: Policy) -> None:
    metric = cost_metric()
    stable, n = exact_arm(20_000)["cost_per_answer"], 20_000 * 0.99
    over = judge_metric(
        policy, metric, stable, exact_arm(5000, cost=1.5e-4)["cost_per_answer"], alpha=0.01
    )
    assert over.margin == pytest.approx(0.25 * stable.total / n)
    assert over.verdict == "fail"
    assert over.reason.startswith("worse than stable by more than 2.5e-05")
    under = judge_metric(
        policy, metric, stable, exact_arm(5000, cost=1.05e-4)["cost_per_answer"], alpha=0.01
    )
    assert under.verdict == "pass"


def test_the_larger_of_absolute_and_relative_margins_applies() -> None:
    metric = cost_metric(max_regression=0.00004)
    assert margin(metric, 1e-4) == pytest.approx(4e-5)  # absolute is larger
    assert margin(metric, 1e-3) == pytest.approx(2.5e-4)  # relative is larger
    assert margin(cost_metric(), math.nan) is None


def test_relative_margin_accounts_for_the_uncertainty_of_the_stable_mean(policy: Policy) -> None:
    """The margin moves with the stable estimate, so the interval the judge compares it with is
    that of canary - 1.25 · stable: wider than the plain difference's by the stable arm's share."""
    metric = cost_metric()
    stable, canary = (
        exact_arm(2000)["cost_per_answer"],
        exact_arm(2000, cost=1.1e-4)["cost_per_answer"],
    )
    relative = judge_metric(policy, metric, stable, canary, alpha=0.01)
    absolute = judge_metric(
        policy,
        cost_metric(max_relative_regression=None, max_regression=2.5e-5),
        stable,
        canary,
        alpha=0.01,
    )
    rel, ab = effect_of(relative), effect_of(absolute)
    assert rel.estimate == pytest.approx(ab.estimate)
    assert rel.low < ab.low
    # Equal arms: the stable arm's variance counts 1.25² times instead of once.
    ratio = (rel.estimate - rel.low) / (ab.estimate - ab.low)
    assert 1.1 < ratio < 1.25


# --- a shared outage, and sticky users ----------------------------------------------------


def test_a_shared_outage_with_per_request_assignment_holds_as_degraded(policy: Policy) -> None:
    """Both arms fail 30% of their answers at the same time: the canary is beyond the limit,
    but its share of the failures is its share of the answers (5%), so it is not to blame."""
    verdict = judge(
        policy, exact_arm(1900, errors=0.3), exact_arm(100, errors=0.3), weight=0.05, fast=True
    )
    assert verdict.decision == "hold"
    error_rate = by_name(verdict)["error_rate"]
    assert error_rate.degraded
    assert "failing no more often than stable at the same time" in error_rate.reason
    assert error_rate.share_evidence is not None and error_rate.share_evidence < 1.0


def test_a_canary_failing_more_often_than_stable_during_an_outage_rolls_back(
    policy: Policy,
) -> None:
    """The same outage, but the canary fails 90% of its answers: its share of the failures
    (90 of 660) is far above its 5% of the answers."""
    verdict = judge(
        policy, exact_arm(1900, errors=0.3), exact_arm(100, errors=0.9), weight=0.05, fast=True
    )
    assert verdict.decision == "rollback"
    error_rate = by_name(verdict)["error_rate"]
    assert error_rate.reason == "above the limit 0.05, failing more often than stable"


def test_sticky_users_count_as_units_not_answers(policy: Policy) -> None:
    """One canary user with a 4.5% error rate, stable's users at 1%: at the request level the
    canary is worse by more than the margin (2 points) over 2,000 answers; counted as one user,
    nothing can be said yet, so the judge holds."""
    stable, canary = exact_arm(38_000, errors=0.01), exact_arm(2000, errors=0.045)
    assert judge(policy, stable, canary).decision == "rollback"
    canary[UNITS] = Ratio(1, 2000)
    verdict = judge(policy, stable, canary)
    assert verdict.decision == "hold"
    assert by_name(verdict)["error_rate"].verdict == "insufficient"


def test_the_design_effect_is_the_canarys_answers_per_user() -> None:
    assert design_effect([Ratio(4, 100), None, Ratio(1, 60)]) == pytest.approx(32.0)
    assert design_effect([Ratio(0, 50)]) == 1.0  # no unit counted: the answers are the units
    assert design_effect([None]) == 1.0
    thin = thinned(Ratio(30, 600), 30)
    assert isinstance(thin, Ratio) and (thin.hits, thin.total) == (1, 20)
