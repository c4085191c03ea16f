"""The quality gate as a command: evaluate, gate, render, and write the registry record."""

from __future__ import annotations

from pathlib import Path

from scripts.toolkit.cli import Outcome, ToolkitError
from scripts.toolkit.evaluation.arms import resolve_arms
from scripts.toolkit.evaluation.dataset import load_dataset
from scripts.toolkit.evaluation.gate import check_policy
from scripts.toolkit.evaluation.record import evaluation_path, evaluation_record, write_evaluation
from scripts.toolkit.evaluation.render import render_markdown, render_text
from scripts.toolkit.evaluation.run import evaluate
from scripts.toolkit.policy import load_policy


def quality_gate(
    *,
    policy_path: Path,
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
    write_to: str | None,
    registry_dir: Path,
) -> Outcome:
    """Evaluate, gate, render, and write the registry record when `write_to` is set."""
    policy = load_policy(policy_path)
    if policy.evaluation is None:
        raise ToolkitError(f"{policy_path} has no `evaluation:` section to gate on.")
    check_policy(policy.evaluation)
    cases = load_dataset(dataset or policy.evaluation.dataset, limit=limit)
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
    result = evaluate(
        policy=policy.evaluation,
        dataset=cases,
        prompt=prompt,
        candidate=candidate,
        baseline=baseline,
        candidate_info=cand_info,
        baseline_info=base_info,
        admin_token=admin_token,
        concurrency=concurrency,
        timeout=timeout,
        retries=retries,
    )
    data = result.to_dict()
    written = None
    if write_to:
        path = evaluation_path(write_to, registry_dir=registry_dir, evaluation=result)
        record = evaluation_record(result, policy_path=str(policy_path))
        write_evaluation(path, record, registry_dir=registry_dir)
        written = data["evaluation_file"] = str(path)
    return Outcome(
        status=result.status,
        exit_code=result.exit_code,
        data=data,
        errors=result.failures if result.status != "pass" else [],
        text=render_text(result, written),
        markdown=render_markdown(result, written),
    )
