"""Prometheus metrics: one registry per process, `track` and `app_version` on every series."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from contract import metrics as names
from contract.metrics import (
    BASE_LABELS,
    COST_BUCKETS,
    LATENCY_BUCKETS,
    SCORE_BUCKETS,
    VARIANT_LABELS,
    family,
)

BASE = BASE_LABELS
VARIANT = VARIANT_LABELS


class ServiceMetrics:
    """The metric set of DESIGN.md, bound to this process's track and version."""

    def __init__(self, *, track: str, app_version: str, git_sha: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.base = (track, app_version)
        r = self.registry
        # process_start_time_seconds: the toolkit tells a restart by it (contract PROCESS_START).
        ProcessCollector(registry=r)
        self.http_requests = Counter(
            "app_http_requests",
            "HTTP requests by route and status code.",
            (*BASE, "method", "route", "status_code"),
            registry=r,
        )
        self.http_duration = Histogram(
            "app_http_request_duration_seconds",
            "HTTP request latency by route.",
            (*BASE, "method", "route"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.request_errors = Counter(
            "app_request_errors",
            "Refused or failed requests by reason.",
            (*BASE, "reason"),
            registry=r,
        )
        self.inflight = Gauge("app_inflight_requests", "Requests being served.", BASE, registry=r)
        self.answers = Counter(
            family(names.ANSWERS),
            "Answers by variant and outcome (answered, refused, error).",
            (*VARIANT, "outcome"),
            registry=r,
        )
        self.answer_duration = Histogram(
            names.ANSWER_DURATION,
            "End-to-end answer latency by variant.",
            VARIANT,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.model_errors = Counter(
            "app_model_call_errors",
            "Failed model calls by variant and reason.",
            (*VARIANT, "reason"),
            registry=r,
        )
        self.tokens = Counter(
            "app_model_tokens",
            "Model tokens by variant and kind (prompt, completion).",
            (*VARIANT, "kind"),
            registry=r,
        )
        self.cost = Histogram(
            names.ANSWER_COST,
            "Estimated model cost of each answer in US dollars, by variant (_sum: total cost).",
            VARIANT,
            buckets=COST_BUCKETS,
            registry=r,
        )
        self.units = Counter(
            family(names.EXPERIMENT_UNITS),
            "Users (or sessions) seen for the first time per variant: the sample-ratio check.",
            VARIANT,
            registry=r,
        )
        self.quality = Histogram(
            names.QUALITY_SCORE,
            "Online quality score per answer request (0..1) by variant; a failed answer scores 0.",
            VARIANT,
            buckets=SCORE_BUCKETS,
            registry=r,
        )
        self.groundedness = Histogram(
            "app_quality_groundedness_ratio",
            "Share of answer terms found in the context.",
            VARIANT,
            buckets=SCORE_BUCKETS,
            registry=r,
        )
        self.citations = Counter(
            "app_answers_with_citations",
            "Answers that cite at least one document, by variant.",
            VARIANT,
            registry=r,
        )
        self.feedback = Counter(
            family(names.FEEDBACK),
            "User feedback by variant and rating (up, down).",
            (*VARIANT, "rating"),
            registry=r,
        )
        self.db_writes = Counter(
            family(names.DB_WRITES),
            "Rows for the database by table and outcome (written, failed, dropped) and reason.",
            (*BASE, "table", "outcome", "reason"),
            registry=r,
        )
        self.db_queue = Gauge(
            names.DB_QUEUE, "Rows waiting to be written to the database.", BASE, registry=r
        )
        self.db_available = Gauge(
            "app_db_available",
            "1 while the last database write (or check) succeeded, else 0.",
            BASE,
            registry=r,
        )
        self.info = Gauge(
            names.BUILD_INFO, "Build of this process (always 1).", (*BASE, "git_sha"), registry=r
        )
        self.info.labels(*self.base, git_sha).set(1)
        self.ready = Gauge(
            "app_ready", "1 when the service reports ready, else 0.", BASE, registry=r
        )
        self.registry_traffic = Gauge(
            "app_registry_traffic_ratio",
            "Share of users each loaded prompt version serves (0..1).",
            (*VARIANT, "status"),
            registry=r,
        )
        self.registry_reloads = Counter(
            family(names.REGISTRY_RELOADS),
            "Registry changes applied (reloaded) or refused (rejected).",
            (*BASE, "outcome"),
            registry=r,
        )
        # Both outcomes exist at 0 from start-up: `increase()` then sees the first rejection.
        for outcome in ("reloaded", "rejected"):
            self.registry_reloads.labels(*self.base, outcome)
