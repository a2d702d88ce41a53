"""Emails keep their mail authentication verdict (SPF, DKIM, DMARC) as Authentication-Results text.

Revision ID: 0004
Revises: 0003 (main's mail log came first; written against 0001, re-chained to keep one head)
Create Date: 2026-12-05 07:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("emails", sa.Column("authentication_results", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("emails") as batch:
        batch.drop_column("authentication_results")
