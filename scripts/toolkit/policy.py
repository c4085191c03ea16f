"""The rollout policy: steps, timing, judged metrics, the quality gate and the A/B rules."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from contract.files import REPO_ROOT
from contract.validation import first_error
from scripts.toolkit.analysis import Direction
from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.metrics import MetricQuery, Selector

DEFAULT_POLICY = REPO_ROOT / "rollout" / "policy.yaml"

# Effect sizes the test is tuned for when a metric sets neither `effect_size` nor a margin.
_DEFAULT_TAU = {"ratio": 0.02, "mean": 0.05}


class Thresholds(BaseModel):
    """Which way is better, how much worse than the other arm the second may be (the margin,
    `analysis.margin`), and a value it must not be worse than whatever the other arm does."""

    model_config = ConfigDict(extra="forbid")

    direction: Direction
    max_regression: float | None = Field(default=None, ge=0)
    max_relative_regression: float | None = Field(default=None, ge=0)
    limit: float | None = None

    @property
    def has_margin(self) -> bool:
        """Whether a margin is set (absolute, relative or both)."""
        return self.max_regression is not None or self.max_relative_regression is not None


class MetricPolicy(Thresholds):
    """One metric: how to read it, which way is better, and how much worse the canary may be."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = ""
    kind: Literal["ratio", "mean"]
    hits: str | list[str] | None = None  # a list: the selectors' series summed
    good: str | list[str] | None = None
    total: str | list[str] | None = None
    histogram: str | None = None
    critical: bool = True
    min_samples: int | None = Field(default=None, ge=1)
    effect_size: float | None = Field(default=None, gt=0)

    @field_validator("hits", "good", "total", "histogram")
    @classmethod
    def _selector(cls, value: str | list[str] | None) -> str | list[str] | None:
        Selector.parse_sum(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> MetricPolicy:
        if self.kind == "ratio" and not (self.total and bool(self.hits) != bool(self.good)):
            raise ValueError("a ratio metric needs `total` and one of `hits` or `good`")
        if self.kind == "mean" and not self.histogram:
            raise ValueError("a mean metric needs a `histogram` selector")
        return self

    @property
    def tau(self) -> float:
        """The mixing scale of the sequential test, fixed before data is seen."""
        return self.effect_size or self.max_regression or _DEFAULT_TAU[self.kind]

    def query(self) -> MetricQuery:
        """What a metric source reads for this metric."""
        return MetricQuery(
            name=self.name,
            kind=self.kind,
            hits=Selector.parse_sum(self.hits),
            good=Selector.parse_sum(self.good),
            total=Selector.parse_sum(self.total),
            histogram=Selector.parse(self.histogram) if self.histogram else None,
        )


def _judged(metric: MetricPolicy) -> MetricPolicy:
    if not metric.has_margin and metric.limit is None:
        raise ValueError("set max_regression, max_relative_regression or limit (or several)")
    return metric


class EvalMetricPolicy(Thresholds):
    """Gate on one offline evaluation score: a margin against the baseline, a limit on the
    candidate's mean (a floor when higher is better, a ceiling when lower is)."""

    direction: Direction = "higher_is_better"


class EvaluationPolicy(BaseModel):
    """The offline quality gate of `evaluate_quality`."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = "eval/golden.jsonl"
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    metrics: dict[str, EvalMetricPolicy] = Field(min_length=1)


class ExperimentPolicy(BaseModel):
    """What `experiment_report` compares, which metric picks the winner, which may veto it."""

    model_config = ConfigDict(extra="forbid")

    primary: str
    compare: list[str] = Field(min_length=1)
    guardrails: list[str] = []
    metrics: list[MetricPolicy] = []  # read only by experiments: compared against zero


class Policy(BaseModel):
    """`rollout/policy.yaml`."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1]
    name: str = "default"
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    steps: list[float] = Field(min_length=1)
    interval_seconds: float = Field(gt=0)
    min_step_seconds: float = Field(ge=0)
    max_step_seconds: float = Field(gt=0)
    max_missing_seconds: float = Field(gt=0)
    min_samples: int = Field(ge=1)
    evidence_from_step: float | None = None
    fast_interval_seconds: float | None = Field(default=None, gt=0)
    max_evidence_seconds: float | None = Field(default=None, gt=0)
    on_insufficient_data: Literal["promote", "hold"] = "promote"
    code_assignment: Literal["request", "user"] = "request"
    traffic_metric: str | None = None
    metrics: list[Annotated[MetricPolicy, AfterValidator(_judged)]] = Field(min_length=1)
    evaluation: EvaluationPolicy | None = None
    experiment: ExperimentPolicy | None = None

    @field_validator("steps")
    @classmethod
    def _steps(cls, steps: list[float]) -> list[float]:
        if any(not 0 < s <= 100 for s in steps):
            raise ValueError("every step is a traffic percentage above 0 and at most 100")
        if any(b <= a for a, b in itertools.pairwise(steps)):
            raise ValueError("steps must increase")
        if steps[-1] != 100:
            raise ValueError("the last step must be 100")
        return steps

    @model_validator(mode="after")
    def _times(self) -> Policy:
        if self.max_step_seconds < self.min_step_seconds:
            raise ValueError("max_step_seconds must be at least min_step_seconds")
        if self.evidence_from_step is not None and self.evidence_from_step not in self.steps:
            raise ValueError("evidence_from_step must be one of the steps")
        if self.evidence_seconds < self.min_step_seconds:
            raise ValueError("max_evidence_seconds must be at least min_step_seconds")
        if self.traffic_metric is not None and self.traffic_metric not in self.measures():
            raise ValueError("traffic_metric must name one of the rollout metrics")
        extra = self.experiment.metrics if self.experiment else []
        if len({m.name for m in [*self.metrics, *extra]}) != len(self.metrics) + len(extra):
            raise ValueError("metric names must be unique")
        if self.experiment is not None:
            self._check_experiment(self.experiment)
        return self

    def _check_experiment(self, experiment: ExperimentPolicy) -> None:
        known, judged = self.measures(rollout_only=False), self.measures()
        named = [("compare", n) for n in experiment.compare] + [("primary", experiment.primary)]
        named += [("guardrails", n) for n in experiment.guardrails]
        for field, name in named:
            allowed, kind = (
                (judged, "rollout metric") if field == "guardrails" else (known, "metric")
            )
            if name not in allowed:
                raise ValueError(
                    f"experiment.{field}: '{name}' is not a {kind} of the policy "
                    f"(it has: {', '.join(allowed)})"
                )
        if experiment.primary not in experiment.compare:
            raise ValueError("experiment.primary must be one of experiment.compare")

    def experiment_with(
        self, *, primary: str | None, guardrails: Sequence[str] | None
    ) -> ExperimentPolicy:
        """The `experiment:` section, its primary metric or guardrails replaced when given."""
        if self.experiment is None:
            raise ToolkitError("the policy has no `experiment:` section to read an experiment by.")
        changes: dict[str, Any] = {"primary": primary, "guardrails": guardrails}
        chosen = self.experiment.model_copy(
            update={k: v for k, v in changes.items() if v is not None}
        )
        if chosen.primary not in chosen.compare:
            chosen = chosen.model_copy(update={"compare": [chosen.primary, *chosen.compare]})
        try:
            self._check_experiment(chosen)
        except ValueError as exc:
            raise ToolkitError(f"{exc}.") from exc
        return chosen

    def measures(self, *, rollout_only: bool = True) -> dict[str, MetricPolicy]:
        """The metrics by name: the rollout's, and with `rollout_only=False` the experiment's."""
        extra = self.experiment.metrics if self.experiment and not rollout_only else []
        return {m.name: m for m in [*self.metrics, *extra]}

    @property
    def evidence_step(self) -> float:
        """From this step on (below 100), moving on needs every critical metric shown within its
        margin and limit; before it, enough samples and no failing metric suffice. Default: the
        last step below 100, where the canary has most of its data."""
        if self.evidence_from_step is not None:
            return self.evidence_from_step
        below = [s for s in self.steps if s < 100]
        return below[-1] if below else 100.0

    def needs_evidence(self, step: float) -> bool:
        """Whether leaving `step` needs a full pass (see `evidence_step`)."""
        return self.evidence_step <= step < 100

    @property
    def fast_interval(self) -> float:
        """Seconds between checks during the first step, where the exact tests catch a
        catastrophe while few users see it (never longer than `interval_seconds`)."""
        return min(self.fast_interval_seconds or self.interval_seconds, self.interval_seconds)

    @property
    def evidence_seconds(self) -> float:
        """How long the evidence step may wait for its full pass before `on_insufficient_data`."""
        return self.max_evidence_seconds or self.max_step_seconds

    @property
    def counted_by(self) -> MetricPolicy:
        """The metric whose count is an arm's answers (traffic, plan, sample ratio)."""
        return self.measures()[self.traffic_metric or self.metrics[0].name]

    @property
    def judged_steps(self) -> int:
        """Steps below 100: each runs its own exact tests, so their alpha is split over them."""
        return max(1, sum(s < 100 for s in self.steps))

    def samples_needed(self, metric: MetricPolicy) -> int:
        """Observations each arm needs before this metric may decide anything."""
        return metric.min_samples or self.min_samples

    def next_step(self, current: float) -> float:
        """The step after `current` traffic percentage (100 stays 100)."""
        return next((s for s in self.steps if s > current + 1e-9), 100.0)


def load_policy(path: Path, **overrides: Any) -> Policy:
    """Read and validate a policy; errors name the file and the field. `overrides` replace
    top-level numbers (for example a faster interval for the local demo)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ToolkitError(f"cannot read the rollout policy {path}: {exc.strerror}.") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ToolkitError(f"{path}: not valid YAML{where}.") from exc
    if not isinstance(data, dict):
        raise ToolkitError(f"{path}: expected a mapping of fields at the top level.")
    if isinstance(extends := data.pop("extends", None), str):  # a profile: a base, then changes
        data = {**load_policy(path.parent / extends).model_dump(exclude_unset=True), **data}
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise ToolkitError(f"{path}: {first_error(exc)}.") from exc
