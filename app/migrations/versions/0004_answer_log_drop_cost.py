"""Rename answer_log.cost to cost_usd, release 3 of 3 (contract): drop cost.

Runs once release 2 (the first that neither writes nor reads `cost`) is fully promoted:
`python -m app.db upgrade --phase contract`. Downgrading adds `cost` back and refills it from
`cost_usd`, so release 1 could run again.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None
# expand: adds only (runs before the rollout); contract: removes (runs after full promotion).
phase = "contract"
# The expand revision whose old column this one removes: it shipped in an earlier release.
expand_revision = "0002"


def upgrade() -> None:
    with op.batch_alter_table("answer_log") as batch:
        batch.drop_column("cost")


def downgrade() -> None:
    op.add_column("answer_log", sa.Column("cost", sa.Float(), nullable=True))
    op.execute("UPDATE answer_log SET cost = cost_usd")
