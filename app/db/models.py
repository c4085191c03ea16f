"""The tables the service writes: the answer log and user feedback (names in contract/database).

Every change to these classes ships as an Alembic revision in app/migrations/versions/, marked
expand or contract (DEPLOYING.md, "Database migrations: expand, migrate, contract").
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Identity,
    Integer,
    MetaData,
    Table,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from contract import database as names

# Named constraints, so a later revision can drop or alter them by name on every database.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}
# BIGINT on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base with the naming convention."""

    metadata = MetaData(naming_convention=NAMING)


class VariantColumns:
    """Who served the answer: the variant's labels (contract.metrics.Variant)."""

    track: Mapped[str] = mapped_column(Text)
    app_version: Mapped[str] = mapped_column(Text)
    prompt: Mapped[str] = mapped_column(Text)
    prompt_version: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(Text)
    model_version: Mapped[str] = mapped_column(Text)


class AnswerLog(VariantColumns, Base):
    """One row per answer request: what served it, how good, how fast, how costly.

    No question text unless APP_DATABASE_LOG_QUESTIONS turns it on."""

    __tablename__ = names.ANSWER_LOG

    id: Mapped[int] = mapped_column(Id, Identity(), primary_key=True)
    request_id: Mapped[str] = mapped_column(Text, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    unit_hash: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(Text)
    quality_score: Mapped[float] = mapped_column(Float)
    groundedness: Mapped[float | None] = mapped_column(Float)
    refused: Mapped[bool | None] = mapped_column(Boolean)
    cited: Mapped[bool | None] = mapped_column(Boolean)
    latency_ms: Mapped[float] = mapped_column(Float)
    prompt_tokens: Mapped[int | None] = mapped_column(BigInteger)
    completion_tokens: Mapped[int | None] = mapped_column(BigInteger)
    # Renamed from `cost` over three releases (DEPLOYING.md); `cost` is retired, not mapped.
    cost_usd: Mapped[float | None] = mapped_column(Float)
    question: Mapped[str | None] = mapped_column(Text)


class Feedback(VariantColumns, Base):
    """One row per counted rating; an answer is rated once (unique request id)."""

    __tablename__ = names.FEEDBACK

    id: Mapped[int] = mapped_column(Id, Identity(), primary_key=True)
    request_id: Mapped[str] = mapped_column(Text, unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    rating: Mapped[str] = mapped_column(Text)


TABLES: dict[str, Table] = {
    names.ANSWER_LOG: Base.metadata.tables[names.ANSWER_LOG],
    names.FEEDBACK: Base.metadata.tables[names.FEEDBACK],
}
