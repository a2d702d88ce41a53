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


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for PostgreSQL and in-memory SQLite)."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database or "").resolve()


def _has_schema(connection: sa.Connection) -> bool:
    return sa.inspect(connection).has_table("alembic_version")


async def has_schema(db: Database) -> bool:
    """Whether the database already carries Postroom's tables (was migrated at least once).

    Call only after checking `sqlite_file(url).exists()`: connecting creates a missing SQLite file.
    """
    async with db.reading() as conn:
        return await conn.run_sync(_has_schema)
