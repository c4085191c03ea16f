"""The service's database as readers outside the service see it: table and column names.

The service writes these tables (`app/db/models.py` maps them); the experiment report reads
them with plain SQL (`scripts/toolkit/metrics/database.py`), so a report survives restarts and
deploys. A replacement service that wants the report to read its database keeps these names.
"""

from __future__ import annotations

# Tables.
ANSWER_LOG = "answer_log"  # one row per answer request (answered, refused or error)
FEEDBACK = "feedback"  # one row per counted rating

# Columns both tables carry: the variant that served the answer (contract.metrics.Variant).
VARIANT_COLUMNS = ("track", "app_version", "prompt", "prompt_version", "model", "model_version")

# answer_log columns the report reads.
OUTCOME = "outcome"  # answered | refused | error (contract.metrics.OUTCOMES)
UNIT = "unit_hash"  # sha256 of the experiment salt and the user id: distinct users per variant
LATENCY = "latency_ms"
QUALITY = "quality_score"  # 0..1; an error scores 0
COST = "cost_usd"  # estimated model cost in US dollars (until release 2 of the rename: cost)

# feedback columns the report reads.
RATING = "rating"  # up | down (contract.metrics.RATINGS)


def normalize_url(url: str) -> str:
    """`postgresql://` and `postgres://` through psycopg 3, the driver this project installs."""
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url.removeprefix(scheme)
    return url
