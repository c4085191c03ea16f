"""The answer log and user feedback.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None
# expand: adds only (runs before the rollout); contract: removes (runs after full promotion).
phase = "expand"

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
VARIANT = ("track", "app_version", "prompt", "prompt_version", "model", "model_version")


def _variant() -> list[sa.Column[str]]:
    return [sa.Column(name, sa.Text(), nullable=False) for name in VARIANT]


def upgrade() -> None:
    op.create_table(
        "answer_log",
        sa.Column("id", Id, sa.Identity(), primary_key=True),
        sa.Column("request_id", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        *_variant(),
        sa.Column("unit_hash", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("quality_score", sa.Float(), nullable=False),
        sa.Column("groundedness", sa.Float(), nullable=True),
        sa.Column("refused", sa.Boolean(), nullable=True),
        sa.Column("cited", sa.Boolean(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=True),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=True),
        sa.Column("cost", sa.Float(), nullable=True),
        sa.Column("question", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_answer_log"),
    )
    op.create_index("ix_answer_log_request_id", "answer_log", ["request_id"])
    op.create_table(
        "feedback",
        sa.Column("id", Id, sa.Identity(), primary_key=True),
        sa.Column("request_id", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        *_variant(),
        sa.Column("rating", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
        sa.UniqueConstraint("request_id", name="uq_feedback_request_id"),
    )


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_index("ix_answer_log_request_id", table_name="answer_log")
    op.drop_table("answer_log")
