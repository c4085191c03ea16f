"""Rename answer_log.cost to cost_usd, release 2 of 3 (expand): backfill cost_usd.

Copies `cost` into `cost_usd` where the live release (release 1) has not written it: rows older
than release 1. Both releases write `cost_usd` from here on, so after this revision every row
has it; this release's code stops writing `cost` and readers read `cost_usd`. Downgrading copies
the other way, so the code of release 1 finds `cost` on the rows this release wrote.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None
# expand: adds only (runs before the rollout); contract: removes (runs after full promotion).
phase = "expand"


def upgrade() -> None:
    # One statement suits this table's size; a large table would copy in id ranges instead.
    op.execute("UPDATE answer_log SET cost_usd = cost WHERE cost_usd IS NULL AND cost IS NOT NULL")


def downgrade() -> None:
    op.execute("UPDATE answer_log SET cost = cost_usd WHERE cost IS NULL AND cost_usd IS NOT NULL")
