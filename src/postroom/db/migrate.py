"""Apply Alembic migrations from inside the running service or `postroom migrate`."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from postroom.db.dialect import MIGRATIONS_LOCK, advisory_lock
from postroom.db.engine import Database

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config(connection: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


async def apply_migrations(db: Database, target: str = "head") -> None:
    """Upgrade the database to `target` (a revision id; the newest by default)."""

    def upgrade(connection: sa.Connection) -> None:
        command.upgrade(alembic_config(connection), target)

    async with db.schema_transaction() as conn:
        # Several processes starting together migrate one at a time.
        await advisory_lock(conn, MIGRATIONS_LOCK)
        await conn.run_sync(upgrade)
