"""Prometheus metrics: one registry per process, `track` and `app_version` on every series."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

BASE = ("track", "app_version")
VARIANT = (*BASE, "prompt", "prompt_version", "model", "model_version")

# Fine enough to read a p95 anywhere between 50 and 500 ms.
LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.125,
    0.15,
    0.2,
    0.25,
    0.3,
    0.35,
    0.4,
    0.5,
    0.6,
    0.75,
    1.0,
    1.5,
    2.5,
    5.0,
    10.0,
)
COST_BUCKETS = (
    1e-6,
    2.5e-6,
    5e-6,
    1e-5,
    2.5e-5,
    5e-5,
    7.5e-5,
    1e-4,
    1.5e-4,
    2e-4,
    3e-4,
    5e-4,
    7.5e-4,
    1e-3,
    2.5e-3,
    5e-3,
    1e-2,
    2.5e-2,
    5e-2,
    0.1,
)
SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))


class ServiceMetrics:
    """The metric set of DESIGN.md, bound to this process's track and version."""

    def __init__(self, *, track: str, app_version: str, git_sha: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.base = (track, app_version)
        r = self.registry
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
            "app_answers",
            "Answers by variant and outcome (answered, refused, error).",
            (*VARIANT, "outcome"),
            registry=r,
        )
        self.answer_duration = Histogram(
            "app_answer_duration_seconds",
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
            "app_answer_cost_usd",
            "Estimated model cost of each answer in US dollars, by variant (_sum: total cost).",
            VARIANT,
            buckets=COST_BUCKETS,
            registry=r,
        )
        self.units = Counter(
            "app_experiment_units",
            "Users (or sessions) seen for the first time per variant: the sample-ratio check.",
            VARIANT,
            registry=r,
        )
        self.quality = Histogram(
            "app_quality_score",
            "Online quality score of answers (0..1) by variant.",
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
            "app_feedback",
            "User feedback by variant and rating (up, down).",
            (*VARIANT, "rating"),
            registry=r,
        )
        self.info = Gauge(
            "app_build_info", "Build of this process (always 1).", (*BASE, "git_sha"), registry=r
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
            "app_registry_reloads",
            "Registry changes applied (reloaded) or refused (rejected).",
            (*BASE, "outcome"),
            registry=r,
        )
