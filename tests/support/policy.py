"""A complete rollout policy with known thresholds, for tests that must not depend on the
shipped `rollout/policy.yaml` (a forker tuning it breaks no test)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from scripts.toolkit.policy import Policy

# A complete policy with known thresholds (those shipped when these tests were written).
EXAMPLE: dict[str, Any] = {
    "schema_version": 1,
    "alpha": 0.05,
    "steps": [5, 20, 50, 100],
    "interval_seconds": 30,
    "min_step_seconds": 120,
    "max_step_seconds": 1800,
    "max_missing_seconds": 180,
    "min_samples": 200,
    "metrics": [
        {"name": "error_rate", "kind": "ratio", "hits": 'app_answers_total{outcome="error"}',
         "total": "app_answers_total", "direction": "lower_is_better", "max_regression": 0.02,
         "limit": 0.05},
        {"name": "slow_answers", "kind": "ratio",
         "good": 'app_answer_duration_seconds_bucket{le="0.5"}',
         "total": "app_answer_duration_seconds_count", "direction": "lower_is_better",
         "max_regression": 0.05},
        {"name": "quality_score", "kind": "mean", "histogram": "app_quality_score",
         "direction": "higher_is_better", "max_regression": 0.05, "limit": 0.5},
        {"name": "cost_per_answer", "kind": "mean", "histogram": "app_answer_cost_usd",
         "direction": "lower_is_better", "max_relative_regression": 0.25,
         "effect_size": 0.00005, "critical": False},
        {"name": "negative_feedback", "kind": "ratio", "hits": 'app_feedback_total{rating="down"}',
         "total": "app_feedback_total", "direction": "lower_is_better", "max_regression": 0.10,
         "critical": False, "min_samples": 50},
    ],
    "evaluation": {
        "metrics": {
            name: {"max_regression": 0.05, "limit": limit}
            for name, limit in [("correctness", 0.3), ("required_facts", 0.5),
                                ("groundedness", 0.6), ("refusal_correctness", 0.6)]
        }
        | {
            "latency_seconds": {"direction": "lower_is_better", "max_relative_regression": 0.5,
                                "max_regression": 0.05},
            "cost_per_answer": {"direction": "lower_is_better", "max_relative_regression": 0.25},
        }
    },
    "experiment": {
        "primary": "quality_score",
        "compare": ["quality_score", "positive_feedback", "error_rate", "latency_seconds",
                    "cost_per_answer"],
        "guardrails": ["error_rate", "slow_answers"],
        "metrics": [
            {"name": "positive_feedback", "kind": "ratio",
             "hits": 'app_feedback_total{rating="up"}', "total": "app_feedback_total",
             "direction": "higher_is_better", "effect_size": 0.10},
            {"name": "latency_seconds", "kind": "mean", "histogram": "app_answer_duration_seconds",
             "direction": "lower_is_better", "effect_size": 0.05},
        ],
    },
}  # fmt: skip


def example_policy(**changes: Any) -> Policy:
    """EXAMPLE, with top-level fields replaced."""
    return Policy.model_validate({**copy.deepcopy(EXAMPLE), **changes})


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    """`data` as a policy file."""
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path
