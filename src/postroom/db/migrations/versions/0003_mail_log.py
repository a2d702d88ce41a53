"""The mail log: one row per SMTP transaction, with the reply the sender got.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import postroom.db.columns

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mail_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("started_at", postroom.db.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", postroom.db.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("client_address", sa.String(length=64), nullable=False),
        sa.Column("helo", sa.String(length=255), nullable=False),
        sa.Column("mail_from", sa.String(length=512), nullable=False),
        sa.Column("recipients", postroom.db.columns.JSONType, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("reply_code", sa.Integer(), nullable=True),
        sa.Column("reply_text", sa.String(length=512), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=True),
        sa.Column("email_ids", postroom.db.columns.JSONType, nullable=False),
        sa.Column("files", postroom.db.columns.JSONType, nullable=False),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["queues.id"],
            name=op.f("fk_mail_log_queue_id_queues"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_log")),
        sqlite_autoincrement=True,  # ids are never reused (0002)
    )
    with op.batch_alter_table("mail_log", schema=None) as batch_op:
        batch_op.create_index("ix_mail_log_started_at", ["started_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("mail_log", schema=None) as batch_op:
        batch_op.drop_index("ix_mail_log_started_at")
    op.drop_table("mail_log")
