"""A/B experiments on prompt and model versions: per-variant metrics, sample ratio, a winner.

The service assigns each user to the production or the canary version of a prompt (sticky, by
the bucket contract) and labels every metric with `prompt` and `prompt_version`. This module
reads those metrics, cumulatively, from one or more `/metrics` pages (or saved copies of them),
or from Prometheus as `increase()` over a window, and reports per variant: users, answers,
error rate, online quality, latency mean and p95, cost per answer, and the share of "up" ratings.

Reading rules, in order:

1. Sample ratio mismatch (SRM): a chi-square goodness-of-fit test of the users per variant
   against the configured split. p < 0.001 means the assignment or the counting is broken
   (a variant that crashes for some users, bots, a split changed mid-experiment), so no
   comparison can be trusted and no winner is declared.
2. Every comparison is canary - production with an always-valid confidence sequence
   (`stats.compare`): the report may be re-read at any time, as often as one likes, without
   inflating the false-winner rate. Each metric's mixing scale tau is fixed below, before data.
3. A winner needs its primary metric (quality by default) to be better, the interval of the
   difference excluding zero in its favour, with at least `min_samples` in both variants, and
   no guardrail significantly worse for it. Guardrails are rollout-policy metrics (by default
   `error_rate` and `slow_answers`, the share of answers over 0.5 s); one is significantly
   worse when its whole interval lies beyond the policy's margin, the same reading the canary
   judge uses: with enough traffic every difference becomes significant, and a guardrail
   protects against the harm the policy says matters.

Caveats: a user is counted once per process and variant (`app_experiment_units_total`), so
with several replicas a user may count once per replica, alike in both variants. The SRM check
assumes the split did not change while the counters (or the Prometheus window) ran.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from scripts.toolkit.cli import (
    EXIT_FAILED,
    EXIT_INCONCLUSIVE,
    EXIT_OK,
    ToolkitError,
)
from scripts.toolkit.judge import estimate
from scripts.toolkit.metrics import (
    Arm,
    ArmData,
    Histogram,
    MetricQuery,
    MetricsUnavailable,
    Observation,
    PrometheusSource,
    Ratio,
    Selector,
    observe,
    parse_exposition,
)
from scripts.toolkit.policy import MetricPolicy, Policy
from scripts.toolkit.registry_ops import rollout_state
from scripts.toolkit.stats import Estimate, compare, interval

SRM_THRESHOLD = 0.001
GUARDRAIL = "guardrail:"  # query-name prefix: a guardrail reads the policy's own selectors
Direction = Literal["higher_is_better", "lower_is_better"]


@dataclass(frozen=True)
class MetricSpec:
    """A metric the experiment compares: what to read, which way is better, its tau."""

    name: str
    query: MetricQuery
    direction: Direction
    tau: float  # the effect the confidence sequence is tuned to, fixed before any data
    unit: str = ""


def _ratio(
    name: str, *, total: str, hits: str | None = None, good: str | None = None
) -> MetricQuery:
    return MetricQuery(
        name=name,
        kind="ratio",
        total=Selector.parse(total),
        hits=Selector.parse(hits) if hits else None,
        good=Selector.parse(good) if good else None,
    )


def _histogram(name: str, selector: str) -> MetricQuery:
    return MetricQuery(name=name, kind="mean", histogram=Selector.parse(selector))


# The comparisons the report makes; any of them may be the primary metric.
METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("quality", _histogram("quality", "app_quality_score"), "higher_is_better", 0.05),
        MetricSpec(
            "feedback",
            _ratio("feedback", total="app_feedback_total", hits='app_feedback_total{rating="up"}'),
            "higher_is_better",
            0.10,
        ),
        MetricSpec(
            "error_rate",
            _ratio(
                "error_rate", total="app_answers_total", hits='app_answers_total{outcome="error"}'
            ),
            "lower_is_better",
            0.02,
        ),
        MetricSpec(
            "latency",
            _histogram("latency", "app_answer_duration_seconds"),
            "lower_is_better",
            0.05,
            "s",
        ),
        MetricSpec(
            "cost", _histogram("cost", "app_answer_cost_usd"), "lower_is_better", 5e-5, "USD"
        ),
    )
}
USERS = _ratio("users", total="app_experiment_units_total", hits="app_experiment_units_total")


# --- where the variants and the metrics come from -------------------------------------------


@dataclass(frozen=True)
class Variants:
    """The two versions of a prompt under test and the canary's configured share."""

    prompt: str
    production: str
    canary: str
    canary_percentage: float
    source: str

    def arms(self) -> list[Arm]:
        """Metric arms, production first."""
        return [
            Arm(name=v, labels={"prompt": self.prompt, "prompt_version": v})
            for v in (self.production, self.canary)
        ]


def variants_from_registry(registry_dir: Path, prompt: str) -> Variants:
    """Production and canary as the registry folder says."""
    state = rollout_state(registry_dir, prompt)
    if state.canary is None:
        raise ToolkitError(
            f"{prompt} has no canary version in {registry_dir}: there is no experiment to report."
        )
    return Variants(prompt, state.production, state.canary, state.canary_percentage, "registry")


def variants_from_service(url: str, prompt: str, *, timeout: float = 10.0) -> Variants:
    """Production and canary as the running service's `/version` says."""
    try:
        response = httpx.get(f"{url.rstrip('/')}/version", timeout=timeout)
        response.raise_for_status()
        versions = response.json()["registry"]["prompts"][prompt]
    except httpx.HTTPError as exc:
        raise ToolkitError(
            f"cannot read {url}/version ({exc.__class__.__name__}); start the service or fix --url."
        ) from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise ToolkitError(f"{url}/version does not list a prompt '{prompt}'.") from exc
    by_status = {v["status"]: v for v in versions}
    if "canary" not in by_status or "production" not in by_status:
        raise ToolkitError(
            f"{prompt} has no canary version at {url}: there is no experiment to report."
        )
    canary = by_status["canary"]
    return Variants(
        prompt,
        str(by_status["production"]["version"]),
        str(canary["version"]),
        float(canary["traffic_percentage"]),
        "service",
    )


@dataclass
class ExpositionSource:
    """Cumulative totals from `/metrics` pages (summed over replicas) or saved copies of them."""

    urls: Sequence[str] = ()
    files: Sequence[Path] = ()
    timeout: float = 10.0

    def _texts(self) -> list[str]:
        texts = []
        with httpx.Client(timeout=self.timeout) as client:
            for url in self.urls:
                try:
                    response = client.get(url)
                    response.raise_for_status()
                except httpx.HTTPError as exc:
                    raise ToolkitError(
                        f"cannot read metrics at {url} ({exc.__class__.__name__}); "
                        "check --metrics-url."
                    ) from exc
                texts.append(response.text)
        for path in self.files:
            try:
                texts.append(path.read_text(encoding="utf-8"))
            except OSError as exc:
                raise ToolkitError(f"cannot read {path}: {exc.strerror}.") from exc
        return texts

    def read(self, queries: Iterable[MetricQuery], arms: Iterable[Arm]) -> dict[str, ArmData]:
        """Totals per arm name and query name."""
        samples = []
        for text in self._texts():
            try:
                samples.extend(parse_exposition(text))
            except ValueError as exc:
                raise ToolkitError(f"not a Prometheus text exposition: {exc}.") from exc
        queries = list(queries)
        return {
            arm.name: {q.name: observe(samples, q, arm.labels) for q in queries} for arm in arms
        }


def read_prometheus(
    url: str, window_seconds: float, queries: Iterable[MetricQuery], arms: Iterable[Arm]
) -> dict[str, ArmData]:
    """`increase()` over the last `window_seconds` from Prometheus."""
    source = PrometheusSource(url=url, start=time.time() - window_seconds)
    try:
        return source.read(queries, arms)
    except MetricsUnavailable as exc:
        raise ToolkitError(exc.message) from exc


# --- statistics -----------------------------------------------------------------------------


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
        return _note(base, "a variant is configured at 0%: nothing to check")
    if min(expected.values()) < 5:
        return _note(base, f"too few users to check ({total:.0f})")
    statistic = sum((observed[k] - expected[k]) ** 2 / expected[k] for k in observed)
    p_value = chi_square_sf(statistic, len(observed) - 1)
    flagged = p_value < threshold
    note = (
        f"sample ratio mismatch: p = {p_value:.3g} < {threshold:g}"
        if flagged
        else f"users match the split (p = {p_value:.3g})"
    )
    return SampleRatio(dict(observed), dict(expected_share), statistic, p_value, flagged, note)


def _note(result: SampleRatio, note: str) -> SampleRatio:
    return SampleRatio(result.observed, result.expected_share, None, None, False, note)


def histogram_quantile(q: float, histogram: Histogram) -> float:
    """The q-quantile from buckets, interpolated linearly as Prometheus' histogram_quantile."""
    total = histogram.count
    if total <= 0:
        return math.nan
    rank, seen, lower = q * total, 0.0, 0.0
    for upper, count in zip(histogram.bounds, histogram.counts, strict=True):
        if count > 0 and seen + count >= rank:
            if not math.isfinite(upper):
                return lower  # in the +Inf bucket: the highest finite bound
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
        lower = upper if math.isfinite(upper) else lower
    return lower


# --- the analysis ---------------------------------------------------------------------------


@dataclass
class VariantStats:
    """What one variant saw."""

    version: str
    role: str  # production or canary
    users: float
    answers: float
    errors: float
    error_rate: float | None
    quality: float | None
    quality_ci: tuple[float, float] | None
    latency_mean: float | None
    latency_p95: float | None
    cost_per_answer: float | None
    feedback: float
    feedback_up_rate: float | None
    feedback_ci: tuple[float, float] | None


@dataclass
class Comparison:
    """canary - production on one metric, with its always-valid interval and a reading."""

    name: str
    direction: str
    production: float | None
    canary: float | None
    n_production: float
    n_canary: float
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    better: str | None  # "canary", "production", or None while the interval holds zero
    data_factor: float | None  # roughly how many times today's data a decision needs
    reading: str


@dataclass
class GuardrailCheck:
    """A policy metric that may veto the winner."""

    name: str
    margin: float | None
    winner_worse_by: float | None  # the winner's difference in the worse direction
    ci: tuple[float, float] | None
    blocks: bool
    reading: str


@dataclass
class ExperimentReport:
    """The whole reading of an experiment."""

    variants: Variants
    primary: str
    alpha: float
    min_samples: int
    stats: list[VariantStats]
    srm: SampleRatio
    comparisons: list[Comparison]
    guardrails: list[GuardrailCheck]
    status: Literal["winner", "inconclusive", "srm"]
    winner: str | None
    winner_role: str | None
    reasons: list[str]
    next_command: str | None = None
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """0 winner, 1 sample ratio mismatch, 3 no winner yet."""
        return {"winner": EXIT_OK, "srm": EXIT_FAILED, "inconclusive": EXIT_INCONCLUSIVE}[
            self.status
        ]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, non-finite numbers as None."""
        data: dict[str, Any] = _clean(
            {
                "status": self.status,
                "winner": self.winner,
                "winner_role": self.winner_role,
                "reasons": self.reasons,
                "next_command": self.next_command,
                "prompt": self.variants.prompt,
                "production": self.variants.production,
                "canary": self.variants.canary,
                "canary_percentage": self.variants.canary_percentage,
                "variants_from": self.variants.source,
                "metrics_from": self.source,
                "primary": self.primary,
                "alpha": self.alpha,
                "min_samples": self.min_samples,
                "srm": asdict(self.srm),
                "variants": [asdict(s) for s in self.stats],
                "comparisons": {c.name: asdict(c) for c in self.comparisons},
                "guardrails": {g.name: asdict(g) for g in self.guardrails},
            }
        )
        return data


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _mean(e: Estimate) -> float | None:
    return e.mean if e.n > 0 and math.isfinite(e.mean) else None


def _ratio_of(observation: Observation) -> Ratio:
    if not isinstance(observation, Ratio):
        raise TypeError("expected a ratio observation")
    return observation


def _variant_stats(version: str, role: str, data: ArmData, *, alpha: float) -> VariantStats:
    users, answers = _ratio_of(data["users"]), _ratio_of(data["error_rate"])
    feedback, latency = _ratio_of(data["feedback"]), data["latency"]
    if not isinstance(latency, Histogram):
        raise TypeError("latency is read from a histogram")
    quality = estimate(data["quality"])
    up = estimate(feedback)

    def ci(e: Estimate, tau: float) -> tuple[float, float] | None:
        return interval(e, tau=tau, alpha=alpha) if e.n > 0 else None

    return VariantStats(
        version=version,
        role=role,
        users=users.total,
        answers=answers.total,
        errors=answers.hits,
        error_rate=_mean(estimate(answers)),
        quality=_mean(quality),
        quality_ci=ci(quality, METRICS["quality"].tau),
        latency_mean=_mean(estimate(latency)),
        latency_p95=histogram_quantile(0.95, latency) if latency.count else None,
        cost_per_answer=_mean(estimate(data["cost"])),
        feedback=feedback.total,
        feedback_up_rate=_mean(up),
        feedback_ci=ci(up, METRICS["feedback"].tau),
    )


def _compare(spec: MetricSpec, production: Estimate, canary: Estimate, alpha: float) -> Comparison:
    result = Comparison(
        name=spec.name,
        direction=spec.direction,
        production=_mean(production),
        canary=_mean(canary),
        n_production=production.n,
        n_canary=canary.n,
        difference=None,
        ci_low=None,
        ci_high=None,
        better=None,
        data_factor=None,
        reading="no data in one of the variants",
    )
    if production.n <= 0 or canary.n <= 0:
        return result
    cmp = compare(production, canary, tau=spec.tau, alpha=alpha)
    result.difference, result.ci_low, result.ci_high = cmp.diff, cmp.low, cmp.high
    higher = spec.direction == "higher_is_better"
    if cmp.low > 0 or cmp.high < 0:
        result.better = "canary" if (cmp.low > 0) == higher else "production"
        result.reading = f"{result.better} is better (interval excludes 0)"
        return result
    radius = (cmp.high - cmp.low) / 2
    if cmp.diff == 0:
        result.reading = "no difference measured"
        return result
    # The interval shrinks about as 1/sqrt(n): if the difference holds, a decision needs about
    # (radius / |diff|)^2 times today's data (a lower bound: the log term grows slowly too).
    result.data_factor = (radius / abs(cmp.diff)) ** 2
    result.reading = f"interval holds 0: about {result.data_factor:.1f}x the data if it holds"
    return result


def _guardrail(
    metric: MetricPolicy, winner: Estimate, other: Estimate, *, alpha: float
) -> GuardrailCheck:
    allowed = metric.margin(other.mean) if other.n > 0 else None
    if winner.n <= 0 or other.n <= 0:
        return GuardrailCheck(metric.name, allowed, None, None, False, "no data")
    cmp = compare(other, winner, tau=metric.tau, alpha=alpha)
    sign = metric.worse_sign
    worse_low, worse_high = sorted((sign * cmp.low, sign * cmp.high))
    limit = allowed or 0.0
    blocks = worse_low > limit
    if blocks:
        reading = f"significantly worse by more than {limit:.4g}"
    elif worse_high > limit:
        reading = "not yet clear of the margin (does not block)"
    else:
        reading = "within the margin"
    return GuardrailCheck(
        metric.name, allowed, sign * cmp.diff, (cmp.low, cmp.high), blocks, reading
    )


def analyze(
    data: Mapping[str, ArmData],
    variants: Variants,
    *,
    policy: Policy,
    primary: str = "quality",
    guardrails: Sequence[str] = ("error_rate", "slow_answers"),
    alpha: float | None = None,
    min_samples: int | None = None,
) -> ExperimentReport:
    """Read the experiment from per-variant totals (`data` keyed by version, then query)."""
    if primary not in METRICS:
        raise ToolkitError(f"--primary must be one of {', '.join(METRICS)}, not {primary!r}.")
    by_name = {m.name: m for m in policy.metrics}
    unknown = [g for g in guardrails if g not in by_name]
    if unknown:
        raise ToolkitError(
            f"guardrail '{unknown[0]}' is not a metric of the rollout policy "
            f"(it has: {', '.join(by_name)})."
        )
    alpha = alpha or policy.alpha
    needed = min_samples if min_samples is not None else policy.min_samples
    prod, can = variants.production, variants.canary
    stats = [
        _variant_stats(prod, "production", data[prod], alpha=alpha),
        _variant_stats(can, "canary", data[can], alpha=alpha),
    ]
    share = variants.canary_percentage / 100
    srm = sample_ratio_check(
        {prod: stats[0].users, can: stats[1].users}, {prod: 1 - share, can: share}
    )
    comparisons = [
        _compare(spec, estimate(data[prod][name]), estimate(data[can][name]), alpha)
        for name, spec in METRICS.items()
    ]
    report = ExperimentReport(
        variants=variants,
        primary=primary,
        alpha=alpha,
        min_samples=needed,
        stats=stats,
        srm=srm,
        comparisons=comparisons,
        guardrails=[],
        status="inconclusive",
        winner=None,
        winner_role=None,
        reasons=[],
    )
    if srm.flagged:
        report.status = "srm"
        report.reasons = [
            f"{srm.note}: users {stats[0].users:.0f} / {stats[1].users:.0f} against a "
            f"{100 - variants.canary_percentage:g}/{variants.canary_percentage:g} split; "
            "fix the assignment or the counting before reading any metric"
        ]
        return report
    main = next(c for c in comparisons if c.name == primary)
    counts = {"production": (prod, main.n_production), "canary": (can, main.n_canary)}
    short = [(r, v, n) for r, (v, n) in counts.items() if n < needed]
    if short:
        report.reasons = [
            f"{role} {version} has {n:.0f} of the {needed} {primary} observations needed"
            for role, version, n in short
        ]
        return report
    if main.better is None:
        report.reasons = [f"{primary}: {main.reading}"]
        return report
    winner, loser = (can, prod) if main.better == "canary" else (prod, can)
    report.guardrails = [
        _guardrail(
            by_name[g],
            estimate(data[winner][GUARDRAIL + g]),
            estimate(data[loser][GUARDRAIL + g]),
            alpha=alpha,
        )
        for g in guardrails
    ]
    blocked = [g for g in report.guardrails if g.blocks]
    if blocked:
        report.reasons = [
            f"{main.better} {winner} is better on {primary} but {g.name} is {g.reading}"
            for g in blocked
        ]
        return report
    report.status, report.winner, report.winner_role = "winner", winner, main.better
    report.reasons = [f"{main.better} {winner} wins on {primary}: {main.reading}"]
    return report


def queries(policy: Policy, guardrails: Sequence[str]) -> list[MetricQuery]:
    """Everything the report reads: users, the compared metrics, the guardrails."""
    by_name = {m.name: m for m in policy.metrics}
    guards = [
        dataclasses.replace(by_name[g].query(), name=GUARDRAIL + g)
        for g in guardrails
        if g in by_name
    ]
    return [USERS, *(s.query for s in METRICS.values()), *guards]
