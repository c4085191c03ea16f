"""Observations from the service's database: the answer log and feedback, read with plain SQL.

The service's counters start again at every restart and deploy; its tables do not. This source
reads the tables (names in contract/database.py, never the service's code) and turns them into
the samples the service's `/metrics` page would show had one process served everything since
`since`: the same families, labels and histogram buckets (contract/metrics.py). Every query of
the rollout policy then reads them unchanged (`observe`). Families the service's database does
not hold (the router's) read as absent, that is 0.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import column, create_engine, func, select, table
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.expression import ColumnClause

from contract import database as db
from contract import metrics as names
from scripts.toolkit.cli import ToolkitError
from scripts.toolkit.metrics.exposition import Sample, observe
from scripts.toolkit.metrics.observations import ArmData
from scripts.toolkit.metrics.source import Arm, MetricQuery

Key = tuple[str, ...]  # the variant's label values, in contract order


def _labels(key: Key, **more: str) -> dict[str, str]:
    return {**dict(zip(names.VARIANT_LABELS, key, strict=True)), **more}


def _histogram(
    family: str, values: dict[Key, list[float]], bounds: Sequence[float]
) -> list[Sample]:
    samples: list[Sample] = []
    for key, observed in values.items():
        per_bucket = Counter(bisect.bisect_left(bounds, v) for v in observed)
        cumulative = 0
        for i, bound in enumerate([*bounds, math.inf]):
            cumulative += per_bucket.get(i, 0)
            le = "+Inf" if math.isinf(bound) else repr(float(bound))
            samples.append((f"{family}_bucket", _labels(key, le=le), float(cumulative)))
        samples.append((f"{family}_count", _labels(key), float(len(observed))))
        samples.append((f"{family}_sum", _labels(key), float(sum(observed))))
    return samples


def read_samples(url: str, *, since: datetime | None = None) -> list[Sample]:
    """The service families as samples, from the rows written since `since` (default: all)."""
    variant: list[ColumnClause[Any]] = [column(c) for c in db.VARIANT_COLUMNS]
    answers, feedback = table(db.ANSWER_LOG), table(db.FEEDBACK)
    created: ColumnClause[Any] = column("created_at")
    engine = create_engine(db.normalize_url(url))
    try:
        with engine.connect() as connection:
            log = select(
                *variant, column(db.OUTCOME), column(db.UNIT), column(db.LATENCY),
                column(db.QUALITY), column(db.COST),
            ).select_from(answers)  # fmt: skip
            rated = (
                select(*variant, column(db.RATING), func.count())
                .select_from(feedback)
                .group_by(*variant, column(db.RATING))
            )
            if since is not None:
                log, rated = log.where(created >= since), rated.where(created >= since)
            rows = connection.execute(log).all()
            ratings = connection.execute(rated).all()
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise ToolkitError(
            f"cannot read the service's database ({reason}); check --database-url."
        ) from exc
    finally:
        engine.dispose()
    outcomes: Counter[tuple[Key, str]] = Counter()
    units: dict[Key, set[str]] = {}
    duration: dict[Key, list[float]] = {}
    quality: dict[Key, list[float]] = {}
    cost: dict[Key, list[float]] = {}
    width = len(db.VARIANT_COLUMNS)
    for row in rows:
        key = tuple(str(v) for v in row[:width])
        outcome, unit, latency_ms, score, dollars = row[width:]
        outcomes[key, outcome] += 1
        units.setdefault(key, set()).add(unit)
        quality.setdefault(key, []).append(float(score))
        # As the service observes them: latency and cost of the answers it produced.
        if outcome != "error":
            duration.setdefault(key, []).append(float(latency_ms) / 1000)
            if dollars is not None:
                cost.setdefault(key, []).append(float(dollars))
    samples: list[Sample] = [
        (names.ANSWERS, _labels(key, **{names.OUTCOME: outcome}), float(n))
        for (key, outcome), n in outcomes.items()
    ]
    samples += [(names.EXPERIMENT_UNITS, _labels(k), float(len(u))) for k, u in units.items()]
    samples += [
        (names.FEEDBACK, _labels(tuple(str(v) for v in r[:width]), **{names.RATING: r[width]}),
         float(r[width + 1]))
        for r in ratings
    ]  # fmt: skip
    samples += _histogram(names.ANSWER_DURATION, duration, names.LATENCY_BUCKETS)
    samples += _histogram(names.QUALITY_SCORE, quality, names.SCORE_BUCKETS)
    samples += _histogram(names.ANSWER_COST, cost, names.COST_BUCKETS)
    return samples


class DatabaseSource:
    """A MetricSource over the service's database (see the module docstring)."""

    def __init__(self, url: str, *, since: float | None = None) -> None:
        self.url = url
        self.since = datetime.fromtimestamp(since, UTC) if since is not None else None

    def read(self, queries: Iterable[MetricQuery], arms: Iterable[Arm]) -> dict[str, ArmData]:
        samples = read_samples(self.url, since=self.since)
        listed = list(queries)
        return {arm.name: {q.name: observe(samples, q, arm.labels) for q in listed} for arm in arms}
