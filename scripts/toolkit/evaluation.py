"""Offline quality gate: a candidate and a baseline answer the golden dataset side by side.

Both arms answer every question in the same run (interleaved per question, the order
alternating), so drift in the service, the machine or the data affects them alike and each
question yields a paired difference. Scores per case (`None` where a score does not apply):

- correctness: token F1 of the answer (its `[n]` markers removed) against `reference_answer`;
  for an unanswerable case, 1 when the service refused and 0 otherwise;
- required_facts: share of `required_facts` found in the answer, case-insensitively (answerable);
- groundedness: the service's own `quality.groundedness` of the answer (answerable);
- refusal_correctness: 1 when the service refused exactly when the case is unanswerable;
- latency_seconds: client-measured time of the request that succeeded;
- cost_per_answer: `usage.estimated_cost_usd`.

A request that fails (HTTP 5xx, timeout, malformed body) counts as the worst answer: 0 on every
quality score and no latency or cost, so a candidate that fails more often fails the gate.

Intervals are Student-t intervals, for each arm's mean and for the mean of the paired
differences (candidate - baseline). Why t and not a bootstrap: the scores are bounded and the
set has ~100 cases, where the t-interval's coverage is good (central limit theorem) while a
percentile bootstrap under-covers for small or lumpy samples (many differences are exactly 0);
it is exact arithmetic with no random seed, identical pairs give exactly [0, 0], and it can be
checked against `scipy.stats.t` (scipy is used when installed, else an exact closed form).

The gate (per score with a rule in the policy's `evaluation.metrics`; `d` = candidate - baseline,
`[lo, hi]` its two-sided 1 - alpha interval, `m` the margin = the larger of `max_regression`
and `max_relative_regression` x |baseline mean|):

- higher_is_better passes only when lo >= -m, lower_is_better only when hi <= +m: the standard
  non-inferiority reading, the candidate must be *shown* not to be worse by more than the margin
  (one-sided level alpha / 2). A wide interval (too few cases, noisy score) therefore fails;
- the candidate's mean must also reach the `floor` (and stay under the `ceiling`);
- a score whose interval is unbounded (fewer than two cases) is `inconclusive`.

The candidate passes only if every gated score passes: an intersection-union test, so the
overall chance of passing a candidate that is worse beyond a margin stays under alpha / 2 with
no multiplicity correction.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import math
import os
import re
import statistics
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.registry.loader import RegistryError, load_registry
from scripts.toolkit.cli import EXIT_FAILED, EXIT_INCONCLUSIVE, EXIT_OK, ToolkitError
from scripts.toolkit.policy import EvalMetricPolicy, EvaluationPolicy

REPO = Path(__file__).resolve().parents[2]

SCORES: dict[str, str] = {
    "correctness": "token F1 vs the reference answer; unanswerable: refused",
    "required_facts": "share of required facts in the answer (answerable cases)",
    "groundedness": "answer terms found in the retrieved context (answerable cases)",
    "refusal_correctness": "refuses exactly the unanswerable questions",
    "latency_seconds": "client-measured seconds per answer",
    "cost_per_answer": "estimated model cost per answer, US dollars",
}
Verdict = Literal["pass", "fail", "inconclusive", "report", "n/a"]

# --- the golden dataset ---------------------------------------------------------------------


class GoldenCase(BaseModel):
    """One line of the golden dataset (JSONL)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    answerable: bool
    reference_answer: str
    required_facts: tuple[str, ...] = ()
    source_docs: tuple[str, ...] = ()
    category: str = "uncategorized"


@dataclass(frozen=True)
class Dataset:
    """The cases to run, and what identifies the file they came from."""

    path: str
    sha256: str
    cases: tuple[GoldenCase, ...]
    cases_in_file: int


def resolve_dataset(path: str) -> Path:
    """A relative dataset path is read from the current folder, else from the repository."""
    given = Path(path)
    if given.is_absolute() or given.exists():
        return given
    return REPO / given


def load_dataset(path: str, *, limit: int | None = None) -> Dataset:
    """Read and validate the JSONL file; `limit` keeps its first cases (quick runs)."""
    file = resolve_dataset(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ToolkitError(f"cannot read the golden dataset {file}: {exc.strerror}.") from exc
    cases: list[GoldenCase] = []
    for number, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            cases.append(GoldenCase.model_validate_json(line))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "line"
            raise ToolkitError(f"{file} line {number}: {where}: {first['msg']}.") from exc
    ids = [c.id for c in cases]
    if len(set(ids)) != len(ids):
        raise ToolkitError(f"{file}: case ids must be unique.")
    if not cases:
        raise ToolkitError(f"{file}: no cases.")
    chosen = cases[:limit] if limit else cases
    return Dataset(path, hashlib.sha256(raw).hexdigest(), tuple(chosen), len(cases))


# --- scoring one answer ---------------------------------------------------------------------

_CITATION = re.compile(r"\[\d{1,3}\]")
# Words and numbers; a number keeps its decimal or thousands part (99.9, 10,000) whole.
_TOKEN = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")
_ARTICLES = frozenset({"a", "an", "the"})


def strip_citations(text: str) -> str:
    """The answer without its `[n]` citation markers."""
    return _CITATION.sub(" ", text)


def answer_tokens(text: str) -> list[str]:
    """SQuAD-style normalisation: lower case, punctuation and articles dropped."""
    return [t for t in _TOKEN.findall(text.lower()) if t not in _ARTICLES]


def token_f1(prediction: str, reference: str) -> float:
    """Harmonic mean of token precision and recall (multiset overlap), as in SQuAD."""
    predicted, wanted = answer_tokens(prediction), answer_tokens(reference)
    if not predicted or not wanted:
        return float(predicted == wanted)
    remaining = dict.fromkeys(wanted, 0)
    for token in wanted:
        remaining[token] += 1
    common = 0
    for token in predicted:
        if remaining.get(token, 0) > 0:
            remaining[token] -= 1
            common += 1
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(wanted)
    return 2 * precision * recall / (precision + recall)


def facts_found(answer: str, facts: Sequence[str]) -> float | None:
    """Share of `facts` that occur in `answer` (case and spacing ignored); None without facts."""
    if not facts:
        return None

    def squash(text: str) -> str:
        return " ".join(text.lower().split())

    text = squash(answer)
    return sum(squash(f) in text for f in facts) / len(facts)


def refusal_correctness(*, answerable: bool, refused: bool) -> float:
    """1 when the service refused exactly when it should have."""
    return float(refused != answerable)


@dataclass(frozen=True)
class Answer:
    """What one request returned (or why it failed)."""

    text: str = ""
    refused: bool = False
    groundedness: float = 0.0
    cost_usd: float | None = None
    latency_seconds: float | None = None
    prompt_version: str | None = None
    model: str | None = None  # name@version
    error: str | None = None


def score_case(case: GoldenCase, answer: Answer) -> dict[str, float | None]:
    """Every score of one answer; `None` where the score does not apply to the case."""
    if answer.error is not None:
        worst: dict[str, float | None] = dict.fromkeys(SCORES, 0.0)
        worst["latency_seconds"] = worst["cost_per_answer"] = None
        if not case.answerable:
            worst["required_facts"] = worst["groundedness"] = None
        elif not case.required_facts:
            worst["required_facts"] = None
        return worst
    text = strip_citations(answer.text)
    if case.answerable:
        correctness = token_f1(text, case.reference_answer)
    else:
        correctness = float(answer.refused)
    return {
        "correctness": correctness,
        "required_facts": facts_found(text, case.required_facts) if case.answerable else None,
        "groundedness": answer.groundedness if case.answerable else None,
        "refusal_correctness": refusal_correctness(
            answerable=case.answerable, refused=answer.refused
        ),
        "latency_seconds": answer.latency_seconds,
        "cost_per_answer": answer.cost_usd,
    }


# --- intervals ------------------------------------------------------------------------------


def _t_cdf(t: float, df: int) -> float:
    """Student-t CDF for integer `df`, in closed form (Abramowitz and Stegun 26.7.3-4)."""
    theta = math.atan(t / math.sqrt(df))
    c2, sin = math.cos(theta) ** 2, math.sin(theta)
    if df % 2:
        term = total = math.cos(theta) if df > 1 else 0.0
        for k in range(1, (df - 1) // 2):
            term *= 2 * k / (2 * k + 1) * c2
            total += term
        a = 2 / math.pi * (theta + sin * total)
    else:
        term = total = 1.0
        for k in range(1, df // 2):
            term *= (2 * k - 1) / (2 * k) * c2
            total += term
        a = sin * total
    return 0.5 + a / 2


def t_quantile(p: float, df: int) -> float:
    """The `p` quantile (p >= 0.5) of Student's t: scipy when installed, else bisection on the
    exact CDF (agrees with scipy to 1e-9)."""
    try:
        from scipy.stats import t as student  # noqa: PLC0415  # optional: a dev dependency
    except ImportError:
        low, high = 0.0, 1.0
        while _t_cdf(high, df) < p:
            high *= 2
        for _ in range(200):
            mid = (low + high) / 2
            low, high = (mid, high) if _t_cdf(mid, df) < p else (low, mid)
            if high - low < 1e-12:
                break
        return (low + high) / 2
    return float(student.ppf(p, df))


@dataclass(frozen=True)
class Interval:
    """A mean and its two-sided 1 - alpha interval over `n` values."""

    mean: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict[str, float | int | None]:
        """JSON-ready (non-finite numbers as None)."""
        return {
            "mean": _finite(self.mean),
            "ci_low": _finite(self.low),
            "ci_high": _finite(self.high),
            "n": self.n,
        }


def mean_interval(values: Sequence[float], *, alpha: float) -> Interval:
    """Mean with its Student-t interval; unbounded for fewer than two values."""
    n = len(values)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = math.fsum(values) / n
    if n == 1:
        return Interval(mean, -math.inf, math.inf, 1)
    spread = statistics.stdev(values)
    half = t_quantile(1 - alpha / 2, n - 1) * spread / math.sqrt(n) if spread else 0.0
    return Interval(mean, mean - half, mean + half, n)


def paired_interval(
    candidate: Sequence[float], baseline: Sequence[float], *, alpha: float
) -> Interval:
    """Interval of the mean paired difference, candidate - baseline."""
    return mean_interval([c - b for c, b in zip(candidate, baseline, strict=True)], alpha=alpha)


# --- the gate -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreResult:
    """One score: both arms, the paired difference, the thresholds and the verdict."""

    name: str
    direction: str
    candidate: Interval
    baseline: Interval
    difference: Interval
    margin: float | None
    floor: float | None
    ceiling: float | None
    verdict: Verdict
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "description": SCORES[self.name],
            "direction": self.direction,
            "candidate": self.candidate.to_dict(),
            "baseline": self.baseline.to_dict(),
            "difference": self.difference.to_dict(),
            "margin": _finite(self.margin),
            "floor": self.floor,
            "ceiling": self.ceiling,
            "verdict": self.verdict,
            "reason": self.reason,
        }


def margin(rule: EvalMetricPolicy, baseline_mean: float) -> float | None:
    """The larger of the absolute and relative allowances (either alone when only one is set)."""
    allowances = [rule.max_regression] if rule.max_regression is not None else []
    if rule.max_relative_regression is not None and math.isfinite(baseline_mean):
        allowances.append(rule.max_relative_regression * abs(baseline_mean))
    return max(allowances) if allowances else None


def judge_score(
    name: str,
    rule: EvalMetricPolicy | None,
    pairs: Sequence[tuple[float, float]],
    *,
    alpha: float,
) -> ScoreResult:
    """Compare the arms on one score (the pairs are the cases where it applies)."""
    cand = mean_interval([c for c, _ in pairs], alpha=alpha)
    base = mean_interval([b for _, b in pairs], alpha=alpha)
    diff = paired_interval([c for c, _ in pairs], [b for _, b in pairs], alpha=alpha)
    direction = rule.direction if rule else "higher_is_better"
    allowed = margin(rule, base.mean) if rule else None
    result = ScoreResult(
        name=name,
        direction=direction,
        candidate=cand,
        baseline=base,
        difference=diff,
        margin=allowed,
        floor=rule.floor if rule else None,
        ceiling=rule.ceiling if rule else None,
        verdict="pass",
        reason="",
    )
    if not pairs:
        return _with(result, "n/a", "no case of this run has this score")
    if rule is None:
        return _with(result, "report", "reported only (no rule in the policy)")
    failures: list[str] = []
    unknown = ""
    if allowed is not None:
        # How much worse the candidate is, at least (`best`) and at most (`worst`).
        higher = direction == "higher_is_better"
        best, worst = (-diff.high, -diff.low) if higher else (diff.low, diff.high)
        if not math.isfinite(worst):
            unknown = "too few cases for an interval"
        elif best > allowed:
            failures.append(f"worse than the baseline by more than {allowed:.4g}")
        elif worst > allowed:
            failures.append(
                f"not shown within the margin: may be {worst:.4g} worse (> {allowed:.4g})"
            )
    if rule.floor is not None and cand.mean < rule.floor:
        failures.append(f"mean {cand.mean:.4g} below the floor {rule.floor:.4g}")
    if rule.ceiling is not None and cand.mean > rule.ceiling:
        failures.append(f"mean {cand.mean:.4g} above the ceiling {rule.ceiling:.4g}")
    if failures:
        return _with(result, "fail", "; ".join(failures))
    if unknown:
        return _with(result, "inconclusive", unknown)
    return _with(result, "pass", "within the margin" + (" and the floor" if rule.floor else ""))


def _with(result: ScoreResult, verdict: Verdict, reason: str) -> ScoreResult:
    return dataclasses.replace(result, verdict=verdict, reason=reason)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


# --- talking to the service -----------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    """One arm: the service that answers and, optionally, the prompt version pinned on it."""

    role: str  # "candidate" or "baseline"
    url: str
    version: str | None = None


@dataclass(frozen=True)
class ServiceInfo:
    """What `/version` says about a service and the prompt under evaluation."""

    url: str
    app_version: str
    git_sha: str
    track: str
    versions: dict[str, str]  # prompt version -> status
    production: str


def service_info(url: str, prompt: str, *, timeout: float) -> ServiceInfo:
    """Read `/version`; a service that cannot be reached or lacks the prompt is a usage error."""
    try:
        response = httpx.get(f"{url.rstrip('/')}/version", timeout=timeout)
        response.raise_for_status()
        body = response.json()
    except httpx.HTTPStatusError as exc:
        raise ToolkitError(
            f"{url}/version answered HTTP {exc.response.status_code}; is it this service?"
        ) from exc
    except (httpx.HTTPError, ValueError) as exc:
        raise ToolkitError(
            f"cannot reach the service at {url} ({exc.__class__.__name__}); "
            "start it or fix the URL."
        ) from exc
    prompts = body.get("registry", {}).get("prompts", {})
    if prompt not in prompts:
        known = ", ".join(sorted(prompts)) or "none"
        raise ToolkitError(f"the service at {url} has no prompt '{prompt}' (it has: {known}).")
    versions = {v["version"]: v["status"] for v in prompts[prompt]}
    production = next((v for v, s in versions.items() if s == "production"), "")
    return ServiceInfo(
        url=url,
        app_version=str(body.get("app_version", "")),
        git_sha=str(body.get("git_sha", "")),
        track=str(body.get("track", "")),
        versions=versions,
        production=production,
    )


def _parse_answer(body: Any, elapsed: float) -> Answer:
    try:
        return Answer(
            text=str(body["answer"]),
            refused=bool(body["quality"]["refused"]),
            groundedness=float(body["quality"]["groundedness"]),
            cost_usd=float(body["usage"]["estimated_cost_usd"]),
            latency_seconds=elapsed,
            prompt_version=str(body["prompt"]["version"]),
            model=f"{body['model']['name']}@{body['model']['version']}",
        )
    except (KeyError, TypeError, ValueError):
        return Answer(error="malformed response body")


@dataclass
class Asker:
    """Asks one question of one arm over a shared client."""

    client: httpx.AsyncClient
    prompt: str
    admin_token: str | None
    retries: int

    async def ask(self, side: Side, case: GoldenCase) -> Answer:
        """One answer; connection errors are retried, nothing else is."""
        headers = {}
        if side.version is not None:
            headers = {
                "X-Pin-Prompt-Version": side.version,
                "X-Admin-Token": self.admin_token or "",
            }
        # A fixed user id keeps an unpinned service's variant assignment deterministic, and
        # counts the evaluation as one user in the experiment metrics (not one per request).
        payload = {"question": case.question, "prompt": self.prompt, "user_id": "evaluate-quality"}
        url = f"{side.url.rstrip('/')}/v1/answer"
        for attempt in range(self.retries + 1):
            started = time.perf_counter()
            try:
                response = await self.client.post(url, json=payload, headers=headers)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt == self.retries:
                    raise ToolkitError(
                        f"lost the {side.role} service at {side.url} ({exc.__class__.__name__})."
                    ) from exc
                await asyncio.sleep(0.25 * 2**attempt)
                continue
            except httpx.TimeoutException:
                return Answer(error="timeout")
            except httpx.HTTPError as exc:
                return Answer(error=exc.__class__.__name__)
            return self._answer(side, response, time.perf_counter() - started)
        raise AssertionError("unreachable")  # pragma: no cover

    def _answer(self, side: Side, response: httpx.Response, elapsed: float) -> Answer:
        if response.status_code >= 500 or response.status_code == 429:
            return Answer(error=f"HTTP {response.status_code}")
        if response.status_code != 200:
            # The service refused the request itself: a wrong token, version or prompt.
            try:
                detail = str(response.json().get("detail", ""))
            except ValueError:
                detail = response.text[:200]
            raise ToolkitError(
                f"the {side.role} service at {side.url} refused the request "
                f"(HTTP {response.status_code}: {detail.rstrip('.')})."
            )
        try:
            body = response.json()
        except ValueError:
            return Answer(error="response is not JSON")
        answer = _parse_answer(body, elapsed)
        if (
            side.version is not None
            and answer.error is None
            and answer.prompt_version != side.version
        ):
            return Answer(error=f"served {answer.prompt_version}, not the pinned {side.version}")
        return answer


async def _collect(
    cases: Sequence[GoldenCase],
    candidate: Side,
    baseline: Side,
    *,
    prompt: str,
    admin_token: str | None,
    concurrency: int,
    timeout: float,
    retries: int,
) -> list[tuple[Answer, Answer]]:
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(
        max_connections=2 * concurrency, max_keepalive_connections=2 * concurrency
    )
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        asker = Asker(client, prompt, admin_token, retries)

        async def pair(index: int, case: GoldenCase) -> tuple[Answer, Answer]:
            async with gate:
                # Alternate who goes first, so warm caches favour neither arm.
                if index % 2 == 0:
                    first = await asker.ask(candidate, case)
                    return first, await asker.ask(baseline, case)
                second = await asker.ask(baseline, case)
                return await asker.ask(candidate, case), second

        tasks = [asyncio.ensure_future(pair(i, c)) for i, c in enumerate(cases)]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise


# --- one evaluation -------------------------------------------------------------------------


@dataclass
class ArmSummary:
    """One arm as run: where, what was pinned, what actually served it, how many failed."""

    role: str
    url: str
    pinned: str | None
    app_version: str
    git_sha: str
    served_versions: list[str]
    models: list[str]
    errors: int

    def label(self) -> str:
        """Short name for tables: the served prompt version, or the URL's app version."""
        versions = ", ".join(self.served_versions) or self.pinned or "?"
        return f"{versions} @ {self.app_version}"


@dataclass
class CaseResult:
    """One case: the scores of both arms."""

    case: GoldenCase
    candidate: dict[str, float | None]
    baseline: dict[str, float | None]
    candidate_error: str | None
    baseline_error: str | None


@dataclass
class Evaluation:
    """Everything one run found."""

    prompt: str
    dataset: Dataset
    alpha: float
    candidate: ArmSummary
    baseline: ArmSummary
    cases: list[CaseResult]
    scores: list[ScoreResult]
    categories: dict[str, list[ScoreResult]]
    status: Literal["pass", "fail", "inconclusive"]
    failures: list[str]
    seconds: float
    evaluated_at: str = field(
        default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds")
    )

    @property
    def exit_code(self) -> int:
        """0 pass, 1 gate failed, 3 inconclusive."""
        return {"pass": EXIT_OK, "fail": EXIT_FAILED, "inconclusive": EXIT_INCONCLUSIVE}[
            self.status
        ]

    def to_dict(self) -> dict[str, Any]:
        """The JSON envelope's `data`."""
        return {
            "status": self.status,
            "failures": self.failures,
            "prompt": self.prompt,
            "alpha": self.alpha,
            "dataset": _dataset_dict(self.dataset),
            "candidate": self.candidate.__dict__,
            "baseline": self.baseline.__dict__,
            "scores": {s.name: s.to_dict() for s in self.scores},
            "categories": {
                name: {s.name: s.to_dict() for s in scores}
                for name, scores in self.categories.items()
            },
            "cases": [
                {
                    "id": r.case.id,
                    "category": r.case.category,
                    "candidate": r.candidate,
                    "baseline": r.baseline,
                    "candidate_error": r.candidate_error,
                    "baseline_error": r.baseline_error,
                }
                for r in self.cases
            ],
            "seconds": round(self.seconds, 3),
            "evaluated_at": self.evaluated_at,
        }


def _dataset_dict(dataset: Dataset) -> dict[str, Any]:
    return {
        "path": dataset.path,
        "sha256": dataset.sha256,
        "n": len(dataset.cases),
        "cases_in_file": dataset.cases_in_file,
    }


def _compare(
    results: Sequence[CaseResult], rules: Mapping[str, EvalMetricPolicy], alpha: float
) -> list[ScoreResult]:
    scores = []
    for name in SCORES:
        pairs = [
            (c, b)
            for r in results
            if (c := r.candidate[name]) is not None and (b := r.baseline[name]) is not None
        ]
        scores.append(judge_score(name, rules.get(name), pairs, alpha=alpha))
    return scores


def _arm(side: Side, info: ServiceInfo, answers: Iterable[Answer]) -> ArmSummary:
    answers = list(answers)
    return ArmSummary(
        role=side.role,
        url=side.url,
        pinned=side.version,
        app_version=info.app_version,
        git_sha=info.git_sha,
        served_versions=sorted({a.prompt_version for a in answers if a.prompt_version}),
        models=sorted({a.model for a in answers if a.model}),
        errors=sum(a.error is not None for a in answers),
    )


def check_policy(policy: EvaluationPolicy) -> None:
    """Every rule must name a score this tool computes."""
    unknown = sorted(set(policy.metrics) - set(SCORES))
    if unknown:
        raise ToolkitError(
            f"the policy's evaluation.metrics has unknown score '{unknown[0]}' "
            f"(known: {', '.join(SCORES)})."
        )


def resolve_sides(
    *,
    prompt: str,
    url: str | None,
    candidate_url: str | None,
    baseline_url: str | None,
    candidate_version: str | None,
    baseline_version: str | None,
    admin_token: str | None,
    timeout: float,
) -> tuple[Side, Side, ServiceInfo, ServiceInfo]:
    """The two arms, checked against the services' `/version` before any question is asked."""
    cand_url, base_url = candidate_url or url, baseline_url or url
    if not cand_url or not base_url:
        raise ToolkitError(
            "name the service: --url with --candidate-version, "
            "or --candidate-url and --baseline-url."
        )
    infos = {
        u: service_info(u, prompt, timeout=timeout) for u in dict.fromkeys([cand_url, base_url])
    }
    cand_info, base_info = infos[cand_url], infos[base_url]
    if cand_url == base_url and candidate_version is None:
        raise ToolkitError("with one service URL, name the candidate with --candidate-version.")
    if candidate_version is not None and cand_url == base_url and baseline_version is None:
        baseline_version = base_info.production
    for version, info in ((candidate_version, cand_info), (baseline_version, base_info)):
        if version is not None and version not in info.versions:
            known = ", ".join(sorted(info.versions))
            raise ToolkitError(
                f"the service at {info.url} has no version '{version}' of prompt '{prompt}' "
                f"(it has: {known}); add registry/prompts/{prompt}/{version}.yaml first."
            )
    if (candidate_version or baseline_version) and not admin_token:
        raise ToolkitError(
            "pinning prompt versions needs the service's admin token: "
            "set ROLLOUT_ADMIN_TOKEN (or --admin-token)."
        )
    candidate = Side("candidate", cand_url, candidate_version)
    baseline = Side("baseline", base_url, baseline_version)
    return candidate, baseline, cand_info, base_info


def evaluate(
    *,
    policy: EvaluationPolicy,
    dataset: Dataset,
    prompt: str,
    candidate: Side,
    baseline: Side,
    candidate_info: ServiceInfo,
    baseline_info: ServiceInfo,
    admin_token: str | None,
    concurrency: int = 8,
    timeout: float = 30.0,
    retries: int = 2,
) -> Evaluation:
    """Run every case on both arms and judge the candidate against the baseline."""
    check_policy(policy)
    started = time.perf_counter()
    answers = asyncio.run(
        _collect(
            dataset.cases,
            candidate,
            baseline,
            prompt=prompt,
            admin_token=admin_token,
            concurrency=concurrency,
            timeout=timeout,
            retries=retries,
        )
    )
    results = [
        CaseResult(case, score_case(case, c), score_case(case, b), c.error, b.error)
        for case, (c, b) in zip(dataset.cases, answers, strict=True)
    ]
    alpha = policy.alpha
    scores = _compare(results, policy.metrics, alpha)
    categories = {
        name: _compare([r for r in results if r.case.category == name], {}, alpha)
        for name in sorted({r.case.category for r in results})
    }
    failures = [f"{s.name}: {s.reason}" for s in scores if s.verdict == "fail"]
    unknown = [s for s in scores if s.verdict == "inconclusive"]
    status: Literal["pass", "fail", "inconclusive"] = (
        "fail" if failures else "inconclusive" if unknown else "pass"
    )
    return Evaluation(
        prompt=prompt,
        dataset=dataset,
        alpha=alpha,
        candidate=_arm(candidate, candidate_info, (c for c, _ in answers)),
        baseline=_arm(baseline, baseline_info, (b for _, b in answers)),
        cases=results,
        scores=scores,
        categories=categories,
        status=status,
        failures=failures or [f"{s.name}: {s.reason}" for s in unknown],
        seconds=time.perf_counter() - started,
    )


# --- evaluation.json ------------------------------------------------------------------------


def _single_model(arm: ArmSummary) -> tuple[str, str]:
    if len(arm.models) != 1:
        found = ", ".join(arm.models) or "none (every request failed)"
        raise ToolkitError(
            f"the {arm.role} answers came from {found}; an evaluation.json records one model."
        )
    name, _, version = arm.models[0].partition("@")
    return name, version


def evaluation_record(evaluation: Evaluation, *, policy_path: str) -> dict[str, Any]:
    """The registry's `models/<model>/<version>/evaluation.json` for the candidate."""
    name, version = _single_model(evaluation.candidate)
    cand, base = evaluation.candidate, evaluation.baseline
    return {
        "schema_version": 1,
        "model": name,
        "version": version,
        "prompt": {"name": evaluation.prompt, "version": ", ".join(cand.served_versions)},
        "app_version": cand.app_version,
        "evaluated_at": evaluation.evaluated_at,
        "dataset": _dataset_dict(evaluation.dataset),
        "scores": {s.name: s.candidate.to_dict() for s in evaluation.scores},
        "baseline": {
            "prompt": {"name": evaluation.prompt, "version": ", ".join(base.served_versions)},
            "models": base.models,
            "app_version": base.app_version,
            "url": base.url,
            "scores": {s.name: s.baseline.to_dict() for s in evaluation.scores},
        },
        "comparison": {
            s.name: {
                "difference": s.difference.to_dict(),
                "margin": _finite(s.margin),
                "floor": s.floor,
                "ceiling": s.ceiling,
                "verdict": s.verdict,
                "reason": s.reason,
            }
            for s in evaluation.scores
        },
        "gate": {
            "status": evaluation.status,
            "passed": evaluation.status == "pass",
            "failures": evaluation.failures,
            "alpha": evaluation.alpha,
            "policy": policy_path,
        },
        "errors": {"candidate": cand.errors, "baseline": base.errors},
        "tool": "python -m scripts.evaluate_quality",
    }


def evaluation_path(target: str, *, registry_dir: Path, evaluation: Evaluation) -> Path:
    """Where to write: `auto` is the candidate's model folder in `registry_dir`."""
    name, version = _single_model(evaluation.candidate)
    if target == "auto":
        folder = registry_dir / "models" / name / version
        if not (folder / "config.yaml").is_file():
            raise ToolkitError(
                f"{folder} has no config.yaml; register {name}@{version} in {registry_dir} first."
            )
        return folder / "evaluation.json"
    path = Path(target)
    parts = path.parts
    if len(parts) >= 4 and parts[-4] == "models" and (parts[-3], parts[-2]) != (name, version):
        raise ToolkitError(
            f"{path} belongs to {parts[-3]}@{parts[-2]}, but the candidate ran on "
            f"{name}@{version}; use --write-evaluation auto."
        )
    return path


def write_evaluation(path: Path, record: Mapping[str, Any], *, registry_dir: Path | None) -> None:
    """Write atomically (a hidden temporary file, then a rename), then check that the registry
    still loads when the file is inside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".evaluation-", suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(record, out, indent=2, allow_nan=False)
        out.write("\n")
    os.replace(temporary, path)
    if registry_dir is not None and path.resolve().is_relative_to(registry_dir.resolve()):
        try:
            load_registry(registry_dir)
        except RegistryError as exc:
            raise ToolkitError(f"wrote {path}, but the registry no longer loads: {exc}") from exc
