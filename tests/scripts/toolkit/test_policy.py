"""The rollout policy: the shipped file loads and reads what a live service exposes; each
mistake is named with file and field. Thresholds are tested on a policy built here, so a forker
tuning rollout/policy.yaml breaks no test."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from contract.metrics import OUTCOMES, RATINGS, ROUTER_FAILURES
from scripts.toolkit.analysis import margin
from scripts.toolkit.cli import EXIT_USAGE, ToolkitError
from scripts.toolkit.experiment.variant_stats import VARIANT_QUERIES
from scripts.toolkit.metrics import parse_exposition
from scripts.toolkit.policy import DEFAULT_POLICY, Policy, load_policy
from tests.conftest import StartApp
from tests.support.policy import EXAMPLE, example_policy, write

Change = Callable[[dict[str, Any]], None]


def test_the_shipped_policy_loads_and_every_metric_is_readable() -> None:
    policy = load_policy(DEFAULT_POLICY)
    assert policy.metrics and any(m.critical for m in policy.metrics)
    for metric in policy.measures(rollout_only=False).values():
        query = metric.query()  # every metric turns into a query a metric source can read
        assert query.histogram is not None or query.total is not None
        assert metric.tau > 0
    assert policy.evaluation is not None and policy.experiment is not None


@pytest.mark.integration
def test_the_shipped_selectors_match_what_a_live_service_exposes(start_app: StartApp) -> None:
    """Every selector of the shipped policy (and of the A/B report) names a family a running
    service exposes, with labels and values it uses (an outcome or rating the service declares
    but has not counted yet included)."""
    app = start_app()
    with httpx.Client(base_url=app.url, timeout=10) as client:
        for rating in RATINGS:
            body = {"question": "How long do I have to ask for a refund?", "user_id": rating}
            answer = client.post("/v1/answer", json=body).json()
            feedback = {"request_id": answer["request_id"], "rating": rating}
            client.post("/v1/feedback", json=feedback).raise_for_status()
        samples = parse_exposition(client.get("/metrics").text)
    declared = {"outcome": set(OUTCOMES), "rating": set(RATINGS)}
    queries = [m.query() for m in load_policy(DEFAULT_POLICY).measures(rollout_only=False).values()]
    for query in [*queries, *VARIANT_QUERIES]:
        summed = [query.hits, query.good, query.total]  # a selector or a sum of them
        parts = [(s, "") for p in summed for s in (p if isinstance(p, tuple) else [p])]
        parts.append((query.histogram, "_bucket"))
        for selector, suffix in [(s, x) for s, x in parts if s is not None]:
            if selector.name == ROUTER_FAILURES:  # the router's, not the service's
                continue
            series = [labels for name, labels, _ in samples if name == selector.name + suffix]
            assert series, f"{query.name}: the service exposes no {selector.name}{suffix}"
            for label, _, value in selector.matchers:
                seen = {labels.get(label) for labels in series}
                assert value in seen | declared.get(label, set()), (query.name, label, value)


def first_metric(change: Callable[[dict[str, Any]], None]) -> Change:
    """A change to the first metric (error_rate)."""
    return lambda data: change(data["metrics"][0])


def quality_metric(change: Callable[[dict[str, Any]], None]) -> Change:
    """A change to the third metric (quality_score)."""
    return lambda data: change(data["metrics"][2])


INVALID: list[tuple[str, Change, str]] = [
    (
        "steps not increasing",
        lambda d: d.update(steps=[5, 50, 20, 100]),
        "field 'steps': steps must increase",
    ),
    (
        "last step not 100",
        lambda d: d.update(steps=[5, 20, 50]),
        "field 'steps': the last step must be 100",
    ),
    ("step over 100", lambda d: d.update(steps=[5, 120]), "field 'steps': every step is a traffic"),
    (
        "ratio without total",
        first_metric(lambda m: m.pop("total")),
        "field 'metrics.0': a ratio metric needs `total`",
    ),
    (
        "ratio with both hits and good",
        first_metric(lambda m: m.update(good="app_answers_total")),
        "field 'metrics.0': a ratio metric needs `total` and one of `hits` or `good`",
    ),
    (
        "mean without histogram",
        quality_metric(lambda m: m.pop("histogram")),
        "field 'metrics.2': a mean metric needs a `histogram` selector",
    ),
    ("unknown top-level field", lambda d: d.update(interval=30), "field 'interval': Extra inputs"),
    (
        "unknown metric field",
        first_metric(lambda m: m.update(treshold=0.1)),
        "field 'metrics.0.treshold': Extra inputs",
    ),
    (
        "bad selector",
        first_metric(lambda m: m.update(hits='app_answers_total{outcome="error" x}')),
        "field 'metrics.0.hits': expected ','",
    ),
    (
        "bad selector regex",
        first_metric(lambda m: m.update(hits='app_answers_total{outcome=~"(err"}')),
        "field 'metrics.0.hits': bad regular expression",
    ),
    (
        "not a selector",
        quality_metric(lambda m: m.update(histogram="rate(app_quality_score[5m])")),
        "field 'metrics.2.histogram': not a series selector",
    ),
    (
        "alpha too large",
        lambda d: d.update(alpha=0.7),
        "field 'alpha': Input should be less than 0.5",
    ),
    ("alpha zero", lambda d: d.update(alpha=0), "field 'alpha': Input should be greater than 0"),
    (
        "max_step_seconds below min_step_seconds",
        lambda d: d.update(max_step_seconds=60),
        "max_step_seconds must be at least min_step_seconds",
    ),
    (
        "duplicate metric names",
        lambda d: d["metrics"].append(copy.deepcopy(d["metrics"][0])),
        "metric names must be unique",
    ),
    (
        "no threshold at all",
        first_metric(lambda m: [m.pop("max_regression"), m.pop("limit")]),
        "field 'metrics.0': set max_regression, max_relative_regression or limit",
    ),
    (
        "negative margin",
        first_metric(lambda m: m.update(max_regression=-0.1)),
        "field 'metrics.0.max_regression'",
    ),
    (
        "bad direction",
        first_metric(lambda m: m.update(direction="up")),
        "field 'metrics.0.direction'",
    ),
    ("unknown schema version", lambda d: d.update(schema_version=2), "field 'schema_version'"),
    (
        "missing interval",
        lambda d: d.pop("interval_seconds"),
        "field 'interval_seconds': Field required",
    ),
]


@pytest.mark.parametrize(
    ("change", "message"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_an_invalid_policy_is_refused_naming_file_and_field(
    tmp_path: Path, change: Change, message: str
) -> None:
    data = copy.deepcopy(EXAMPLE)
    change(data)
    path = write(tmp_path, data)
    with pytest.raises(ToolkitError) as caught:
        load_policy(path)
    assert caught.value.message.startswith(f"{path}:")
    assert message in caught.value.message
    assert caught.value.message.endswith(".")
    assert caught.value.exit_code == EXIT_USAGE


def test_malformed_yaml_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("schema_version: 1\nalpha: 0.05\nsteps: [5, 20\ninterval_seconds: 30\n")
    with pytest.raises(ToolkitError, match=r"policy\.yaml: not valid YAML \(line 4\)"):
        load_policy(path)


@pytest.mark.parametrize("text", ["- 1\n- 2\n", "just words\n", ""])
def test_a_policy_that_is_not_a_mapping_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(ToolkitError, match="expected a mapping of fields at the top level"):
        load_policy(path)


def test_a_missing_policy_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ToolkitError, match=r"cannot read the rollout policy .*nope\.yaml"):
        load_policy(tmp_path / "nope.yaml")


def test_overrides_replace_top_level_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, EXAMPLE)
    policy = load_policy(path, interval_seconds=2, min_step_seconds=None)
    assert policy.interval_seconds == 2
    assert policy.min_step_seconds == 120  # None leaves the file's value
    assert load_policy(path, min_step_seconds=5).min_step_seconds == 5


def test_an_invalid_override_is_refused_like_the_file_value(tmp_path: Path) -> None:
    path = write(tmp_path, EXAMPLE)
    with pytest.raises(
        ToolkitError, match="field 'interval_seconds': Input should be greater than 0"
    ):
        load_policy(path, interval_seconds=0)
    with pytest.raises(ToolkitError, match="max_step_seconds must be at least min_step_seconds"):
        load_policy(path, min_step_seconds=4000)


@pytest.mark.parametrize(
    ("current", "expected"),
    [(0, 5), (5, 20), (7, 20), (20, 50), (50, 100), (99.5, 100), (100, 100)],
)
def test_next_step(current: float, expected: float) -> None:
    assert example_policy().next_step(current) == expected


def test_relative_and_absolute_margins() -> None:
    metrics = example_policy().measures()
    assert margin(metrics["cost_per_answer"], 2e-4) == pytest.approx(5e-5)
    assert margin(metrics["error_rate"], 0.3) == 0.02  # absolute only


def test_tau_is_the_effect_size_else_the_absolute_margin_else_a_default() -> None:
    taus = {m.name: m.tau for m in example_policy().measures(rollout_only=False).values()}
    assert taus["error_rate"] == 0.02
    assert taus["cost_per_answer"] == 0.00005
    data = copy.deepcopy(EXAMPLE)
    data["metrics"][0].pop("max_regression")
    assert Policy.model_validate(data).metrics[0].tau == 0.02  # the default for ratios
    assert example_policy().samples_needed(example_policy().metrics[4]) == 50


def test_the_experiment_options_replace_the_policys_choice() -> None:
    policy = example_policy()
    chosen = policy.experiment_with(primary="latency_seconds", guardrails=["error_rate"])
    assert (chosen.primary, chosen.guardrails) == ("latency_seconds", ["error_rate"])
    with pytest.raises(ToolkitError, match=r"experiment\.guardrails: 'speed' is not a rollout"):
        policy.experiment_with(primary=None, guardrails=["speed"])
    with pytest.raises(ToolkitError, match="no `experiment:` section"):
        example_policy(experiment=None).experiment_with(primary=None, guardrails=None)


def test_the_low_traffic_profile_extends_the_default_and_is_consistent() -> None:
    base = load_policy(DEFAULT_POLICY)
    profile = load_policy(DEFAULT_POLICY.parent / "profiles" / "low-traffic.yaml")
    assert profile.name == "low-traffic"
    assert [m.name for m in profile.metrics] == [m.name for m in base.metrics]
    assert profile.steps[-1] == 100 and profile.evidence_seconds >= profile.min_step_seconds
    assert profile.fast_interval <= profile.interval_seconds
    assert profile.counted_by.kind == "ratio"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_evidence_seconds": 1, "min_step_seconds": 10}, "max_evidence_seconds"),
        ({"traffic_metric": "nope"}, "traffic_metric"),
        ({"on_insufficient_data": "rollback"}, "on_insufficient_data"),
        ({"code_assignment": "session"}, "code_assignment"),
    ],
)
def test_the_traffic_settings_are_validated(change: dict[str, object], message: str) -> None:
    with pytest.raises(ToolkitError, match=message):
        load_policy(DEFAULT_POLICY, **change)
