"""Rename answer_log.cost to cost_usd, release 1 of 3 (expand): add the new column.

The worked example of DEPLOYING.md ("Database migrations: expand, migrate, contract"). This
release's code writes both columns; the live release ignores the new one, so it may run
before the rollout. Release 2 backfills it and stops writing `cost`; release 3 drops `cost`.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None
# expand: adds only (runs before the rollout); contract: removes (runs after full promotion).
phase = "expand"


def upgrade() -> None:
    op.add_column("answer_log", sa.Column("cost_usd", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("answer_log") as batch:
        batch.drop_column("cost_usd")
