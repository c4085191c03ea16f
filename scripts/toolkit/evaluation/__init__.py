"""Offline quality gate: a candidate and a baseline answer the golden dataset side by side."""

from __future__ import annotations

from scripts.toolkit.evaluation.asking import Asker, collect_answers
from scripts.toolkit.evaluation.command import quality_gate
from scripts.toolkit.evaluation.dataset import (
    REPO,
    Dataset,
    GoldenCase,
    load_dataset,
    resolve_dataset,
)
from scripts.toolkit.evaluation.gate import (
    ScoreResult,
    Status,
    Verdict,
    check_policy,
    compare_scores,
    gate_status,
    judge_score,
    margin,
)
from scripts.toolkit.evaluation.intervals import (
    Interval,
    finite,
    mean_interval,
    paired_interval,
    t_quantile,
)
from scripts.toolkit.evaluation.record import (
    evaluation_path,
    evaluation_record,
    write_evaluation,
)
from scripts.toolkit.evaluation.render import QUALITY_SCORES, render_markdown, render_text
from scripts.toolkit.evaluation.results import ArmSummary, Evaluation
from scripts.toolkit.evaluation.run import evaluate
from scripts.toolkit.evaluation.scoring import (
    SCORES,
    Answer,
    CaseResult,
    answer_tokens,
    facts_found,
    refusal_correctness,
    score_case,
    strip_citations,
    token_f1,
)
from scripts.toolkit.evaluation.sides import ServiceInfo, Side, resolve_sides, service_info

__all__ = [
    "QUALITY_SCORES",
    "REPO",
    "SCORES",
    "Answer",
    "ArmSummary",
    "Asker",
    "CaseResult",
    "Dataset",
    "Evaluation",
    "GoldenCase",
    "Interval",
    "ScoreResult",
    "ServiceInfo",
    "Side",
    "Status",
    "Verdict",
    "answer_tokens",
    "check_policy",
    "collect_answers",
    "compare_scores",
    "evaluate",
    "evaluation_path",
    "evaluation_record",
    "facts_found",
    "finite",
    "gate_status",
    "judge_score",
    "load_dataset",
    "margin",
    "mean_interval",
    "paired_interval",
    "quality_gate",
    "refusal_correctness",
    "render_markdown",
    "render_text",
    "resolve_dataset",
    "resolve_sides",
    "score_case",
    "service_info",
    "strip_citations",
    "t_quantile",
    "token_f1",
    "write_evaluation",
]
