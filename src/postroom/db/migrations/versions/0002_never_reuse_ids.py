"""Ids are never reused; idempotency keys; emails flag a reused Message-ID.

- SQLite: every table with an `id` is rebuilt as `INTEGER PRIMARY KEY AUTOINCREMENT`, and
  `sqlite_sequence` is seeded with each table's largest id, so the id of a row deleted from now
  on is never handed out again (a plain rowid table reuses the largest one). An id deleted
  before this migration at the top of a table left no trace and may be given out once more.
  PostgreSQL sequences never reuse a number: nothing to do there.
- `idempotency_keys`: the first answer to a create sent with an `Idempotency-Key`.
- `emails.message_id_conflict_id`: the earlier email with the same Message-ID and sender but
  other bytes.

The rebuild runs with foreign keys off (`Database.schema_transaction`): dropping the old table
with them on would cascade into every row that refers to it.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import postroom.db.columns

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Parents before children; every table whose primary key is an integer `id`.
ID_TABLES = (
    "organizations",
    "users",
    "workspaces",
    "schemas",
    "inboxes",
    "queues",
    "hooks",
    "emails",
    "uploads",
    "documents",
    "annotations",
    "tasks",
    "jobs",
)


def upgrade() -> None:
    bind = op.get_bind()
    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_sha256", sa.String(length=64), nullable=True),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("created_at", postroom.db.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_until", postroom.db.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", postroom.db.columns.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_idempotency_keys_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index(
        op.f("ix_idempotency_keys_expires_at"), "idempotency_keys", ["expires_at"], unique=False
    )
    if bind.dialect.name != "sqlite":
        op.add_column("emails", sa.Column("message_id_conflict_id", sa.Integer(), nullable=True))
        return
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError(
            "0002 rebuilds tables: run it with foreign keys off (postroom migrate does)"
        )
    for table in ID_TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ) as batch:
            if table == "emails":
                batch.add_column(sa.Column("message_id_conflict_id", sa.Integer(), nullable=True))
        _seed_sequence(bind, table)


def _seed_sequence(bind: sa.Connection, table: str) -> None:
    """`sqlite_sequence` holds the largest id handed out; start it at the largest id kept."""
    bind.exec_driver_sql("DELETE FROM sqlite_sequence WHERE name = ?", (table,))
    bind.exec_driver_sql(
        f"INSERT INTO sqlite_sequence (name, seq) SELECT ?, max(id) FROM {table} "
        "HAVING max(id) IS NOT NULL",
        (table,),
    )


def downgrade() -> None:
    # AUTOINCREMENT stays: it changes no data and the code of 0001 works with it.
    with op.batch_alter_table("emails") as batch:
        batch.drop_column("message_id_conflict_id")
    op.drop_index(op.f("ix_idempotency_keys_expires_at"), table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
