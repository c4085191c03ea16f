"""The quality gate as a command: ask both arms every case, score, gate, render, record."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from pathlib import Path

from scripts.toolkit.cli import EXIT_BY_VERDICT, Outcome, ToolkitError
from scripts.toolkit.evaluation.arms import ArmService, ServiceInfo, collect_answers, resolve_arms
from scripts.toolkit.evaluation.dataset import load_dataset
from scripts.toolkit.evaluation.gate import check_policy, compare_scores, gate_status
from scripts.toolkit.evaluation.render import render_markdown, render_text
from scripts.toolkit.evaluation.results import ArmSummary, Evaluation, write_record
from scripts.toolkit.evaluation.scoring import Answer, CaseResult, score_case
from scripts.toolkit.policy import load_policy


def quality_gate(
    *,
    policy: Path,
    prompt: str,
    url: str | None,
    candidate_url: str | None,
    baseline_url: str | None,
    candidate_version: str | None,
    baseline_version: str | None,
    admin_token: str | None,
    dataset: str | None,
    limit: int | None,
    concurrency: int,
    timeout: float,
    retries: int,
    write_evaluation: str | None,
    registry_dir: Path,
) -> Outcome:
    """Run every case on both arms, judge the candidate against the baseline, render, and write
    the registry record when `write_evaluation` is set."""
    rules = load_policy(policy).evaluation
    if rules is None:
        raise ToolkitError(f"{policy} has no `evaluation:` section to gate on.")
    check_policy(rules)
    cases = load_dataset(dataset or rules.dataset, limit=limit)
    candidate, baseline, cand_info, base_info = resolve_arms(
        prompt=prompt,
        url=url,
        candidate_url=candidate_url,
        baseline_url=baseline_url,
        candidate_version=candidate_version,
        baseline_version=baseline_version,
        admin_token=admin_token,
        timeout=min(timeout, 10.0),
    )
    started = time.perf_counter()
    answers = asyncio.run(
        collect_answers(
            cases.cases,
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
        for case, (c, b) in zip(cases.cases, answers, strict=True)
    ]
    scores = compare_scores(results, rules.metrics, rules.alpha)
    status, failures = gate_status(scores)
    result = Evaluation(
        prompt=prompt,
        dataset=cases,
        alpha=rules.alpha,
        candidate=_arm(candidate, cand_info, (c for c, _ in answers)),
        baseline=_arm(baseline, base_info, (b for _, b in answers)),
        cases=results,
        scores=scores,
        categories={
            name: compare_scores([r for r in results if r.case.category == name], {}, rules.alpha)
            for name in sorted({r.case.category for r in results})
        },
        status=status,
        failures=failures,
        seconds=time.perf_counter() - started,
    )
    data = result.to_dict()
    written = None
    if write_evaluation:
        path = write_record(result, write_evaluation, registry_dir=registry_dir, policy=policy)
        written = data["evaluation_file"] = str(path)
    return Outcome(
        status=result.status,
        exit_code=EXIT_BY_VERDICT[result.status],
        data=data,
        errors=result.failures if result.status != "pass" else [],
        text=render_text(result, written),
        markdown=render_markdown(result, written),
    )


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
