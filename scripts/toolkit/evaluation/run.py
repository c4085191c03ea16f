"""One evaluation: ask both arms every case, score the answers, and gate the candidate."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from scripts.toolkit.evaluation.arms import ArmService, ServiceInfo
from scripts.toolkit.evaluation.asking import collect_answers
from scripts.toolkit.evaluation.dataset import Dataset
from scripts.toolkit.evaluation.gate import check_policy, compare_scores, gate_status
from scripts.toolkit.evaluation.results import ArmSummary, Evaluation
from scripts.toolkit.evaluation.scoring import Answer, CaseResult, score_case
from scripts.toolkit.policy import EvaluationPolicy


def _arm(arm: ArmService, info: ServiceInfo, answers: Iterable[Answer]) -> ArmSummary:
    answers = list(answers)
    return ArmSummary(
        role=arm.role,
        url=arm.url,
        pinned=arm.version,
        app_version=info.app_version,
        git_sha=info.git_sha,
        served_versions=sorted({a.prompt_version for a in answers if a.prompt_version}),
        models=sorted({a.model for a in answers if a.model}),
        errors=sum(a.error is not None for a in answers),
    )


def evaluate(
    *,
    policy: EvaluationPolicy,
    dataset: Dataset,
    prompt: str,
    candidate: ArmService,
    baseline: ArmService,
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
        collect_answers(
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
    scores = compare_scores(results, policy.metrics, alpha)
    categories = {
        name: compare_scores([r for r in results if r.case.category == name], {}, alpha)
        for name in sorted({r.case.category for r in results})
    }
    status, failures = gate_status(scores)
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
        failures=failures,
        seconds=time.perf_counter() - started,
    )
