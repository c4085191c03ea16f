"""The rollout policy: the repository's file loads; each mistake is named with file and field."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.toolkit.cli import EXIT_USAGE, ToolkitError
from scripts.toolkit.policy import DEFAULT_POLICY, Policy, load_policy

Change = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def shipped() -> dict[str, Any]:
    """rollout/policy.yaml as plain data."""
    data = yaml.safe_load(DEFAULT_POLICY.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    """`data` as a policy file."""
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_the_repository_policy_loads() -> None:
    policy = load_policy(DEFAULT_POLICY)
    assert policy.steps == [5, 20, 50, 100]
    assert policy.alpha == 0.05
    assert [m.name for m in policy.metrics] == [
        "error_rate",
        "slow_answers",
        "quality_score",
        "cost_per_answer",
        "negative_feedback",
    ]
    assert [m.name for m in policy.metrics if m.critical] == [
        "error_rate",
        "slow_answers",
        "quality_score",
    ]
    # Every metric turns into a query a metric source can read.
    queries = {m.name: m.query() for m in policy.metrics}
    assert queries["slow_answers"].good is not None
    assert queries["slow_answers"].good.matchers == (("le", "=", "0.5"),)
    assert queries["quality_score"].histogram is not None
    # tau defaults to the absolute margin; the cost metric sets its own.
    taus = {m.name: m.tau for m in policy.metrics}
    assert taus == {
        "error_rate": 0.02,
        "slow_answers": 0.05,
        "quality_score": 0.05,
        "cost_per_answer": 0.00005,
        "negative_feedback": 0.10,
    }
    assert policy.samples_needed(policy.metrics[4]) == 50
    assert policy.samples_needed(policy.metrics[0]) == 200


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
    tmp_path: Path, shipped: dict[str, Any], change: Change, message: str
) -> None:
    data = copy.deepcopy(shipped)
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


def test_overrides_replace_top_level_numbers() -> None:
    policy = load_policy(DEFAULT_POLICY, interval_seconds=2, min_step_seconds=None)
    assert policy.interval_seconds == 2
    assert policy.min_step_seconds == 120  # None leaves the file's value
    assert load_policy(DEFAULT_POLICY, min_step_seconds=5).min_step_seconds == 5


def test_an_invalid_override_is_refused_like_the_file_value() -> None:
    with pytest.raises(
        ToolkitError, match="field 'interval_seconds': Input should be greater than 0"
    ):
        load_policy(DEFAULT_POLICY, interval_seconds=0)
    with pytest.raises(ToolkitError, match="max_step_seconds must be at least min_step_seconds"):
        load_policy(DEFAULT_POLICY, min_step_seconds=4000)


@pytest.mark.parametrize(
    ("current", "expected"),
    [(0, 5), (5, 20), (7, 20), (20, 50), (50, 100), (99.5, 100), (100, 100)],
)
def test_next_step(current: float, expected: float) -> None:
    assert load_policy(DEFAULT_POLICY).next_step(current) == expected


def test_relative_and_absolute_margins(shipped: dict[str, Any]) -> None:
    policy = Policy.model_validate(shipped)
    cost = next(m for m in policy.metrics if m.name == "cost_per_answer")
    assert cost.margin(2e-4) == pytest.approx(5e-5)
    error_rate = policy.metrics[0]
    assert error_rate.margin(0.3) == 0.02  # absolute only
    assert error_rate.worse_sign == 1.0
    assert policy.metrics[2].worse_sign == -1.0
