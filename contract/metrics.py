"""Metric and label names the toolkit reads from a service, and the variant that labels them.

Names here are the *exposed* family names, as PromQL and `/metrics` spell them (a counter's
`_total` included). A replacement service must expose the families the rollout policy reads
(`rollout/policy.yaml`) with these labels; docs/service-contract.md lists them per feature.
"""

from __future__ import annotations

from dataclasses import dataclass

# Labels every series carries.
TRACK = "track"
APP_VERSION = "app_version"
# Labels of the series that belong to one prompt/model variant.
PROMPT = "prompt"
PROMPT_VERSION = "prompt_version"
MODEL = "model"
MODEL_VERSION = "model_version"

BASE_LABELS = (TRACK, APP_VERSION)
VARIANT_LABELS = (*BASE_LABELS, PROMPT, PROMPT_VERSION, MODEL, MODEL_VERSION)

# Families (exposed names).
ANSWERS = "app_answers_total"  # label `outcome`: answered | refused | error
ANSWER_DURATION = "app_answer_duration_seconds"  # histogram
QUALITY_SCORE = "app_quality_score"  # histogram, 0..1
ANSWER_COST = "app_answer_cost_usd"  # histogram
FEEDBACK = "app_feedback_total"  # label `rating`: up | down
EXPERIMENT_UNITS = "app_experiment_units_total"  # users first seen per variant
REGISTRY_RELOADS = "app_registry_reloads_total"  # label `outcome`: reloaded | rejected
BUILD_INFO = "app_build_info"
# Rows for the database (label `table`: answer_log | feedback; `outcome`: written | failed |
# dropped): the migration gate reads `failed` and `dropped` to tell whether a release can still
# write to a migrated schema. DB_QUEUE is the rows waiting to be written (a gauge).
DB_WRITES = "app_db_writes_total"
DB_QUEUE = "app_db_queue_rows"
DB_OUTCOMES = ("written", "failed", "dropped")
# Recommended (prometheus_client's process collector): a changed value means the process
# restarted, even when its new counts have passed the old ones by the next reading.
PROCESS_START = "process_start_time_seconds"
# The traffic router's count of requests a track failed to answer (connection refused, timed
# out, broken off; labels `track`, `app_version`, `reason`), which the rollout policy adds to the
# service's errors. The router exposes it, not the service: check_service does not ask for it.
ROUTER_FAILURES = "router_backend_errors_total"

OUTCOME = "outcome"  # label of ANSWERS and REGISTRY_RELOADS
RATING = "rating"  # label of FEEDBACK
OUTCOMES = ("answered", "refused", "error")
RATINGS = ("up", "down")

# Histogram buckets shared by the service and the simulations that stand in for it.
# Fine enough to read a p95 anywhere between 50 and 500 ms.
LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3,
    0.35, 0.4, 0.5, 0.6, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0,
)  # fmt: skip
COST_BUCKETS = (
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 7.5e-5, 1e-4, 1.5e-4, 2e-4,
    3e-4, 5e-4, 7.5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1,
)  # fmt: skip
# Bounds at exactly 0 and just below 1: refusals and errors (score 0) and perfect answers (1)
# each get a bucket of their own, so the variance read from the buckets is exact for them.
SCORE_BUCKETS = (0.0, *(round(0.05 * i, 2) for i in range(1, 20)), 0.999, 1.0)


@dataclass(frozen=True)
class Family:
    """A family the toolkit reads: exposed name, kind, and the labels every series carries."""

    name: str
    kind: str  # counter | histogram (as `# TYPE` says)
    labels: tuple[str, ...]


# What the judge, the experiment report and the conformance check read (service-contract.md).
FAMILIES = (
    Family(ANSWERS, "counter", (*VARIANT_LABELS, OUTCOME)),
    Family(ANSWER_DURATION, "histogram", VARIANT_LABELS),
    Family(QUALITY_SCORE, "histogram", VARIANT_LABELS),
    Family(ANSWER_COST, "histogram", VARIANT_LABELS),
    Family(FEEDBACK, "counter", (*VARIANT_LABELS, RATING)),
    Family(EXPERIMENT_UNITS, "counter", VARIANT_LABELS),
)


def family(exposed: str) -> str:
    """The name prometheus_client takes for an exposed family (a counter's `_total` dropped)."""
    return exposed.removesuffix("_total")


@dataclass(frozen=True)
class Variant:
    """Who served an answer: the instance (track, app version) and the prompt/model variant."""

    track: str
    app_version: str
    prompt: str
    prompt_version: str
    model: str
    model_version: str

    def labels(self) -> dict[str, str]:
        """The variant's label values by label name (never positional)."""
        return {
            TRACK: self.track,
            APP_VERSION: self.app_version,
            PROMPT: self.prompt,
            PROMPT_VERSION: self.prompt_version,
            MODEL: self.model,
            MODEL_VERSION: self.model_version,
        }
