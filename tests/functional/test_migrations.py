"""Alembic migrations: they build exactly the tables the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from postroom.db.engine import Database
from postroom.db.migrate import apply_migrations
from postroom.db.tables import metadata
from tests.conftest import PG_URL, reset_postgres


def _differences(connection: object) -> list[object]:
    context = MigrationContext.configure(connection)  # type: ignore[arg-type]
    return list(compare_metadata(context, metadata))


async def test_migrations_match_the_declared_tables(tmp_path: Path) -> None:
    """After `upgrade head` on an empty database, autogenerate finds nothing left to migrate."""
    if PG_URL:
        await reset_postgres(PG_URL)
    db = Database(PG_URL or f"sqlite+aiosqlite:///{tmp_path / 'm.sqlite3'}")
    try:
        await apply_migrations(db)
        await apply_migrations(db)  # idempotent: a second start migrates nothing
        async with db.reading() as conn:
            differences = await conn.run_sync(_differences)
            version = (
                await conn.exec_driver_sql("SELECT version_num FROM alembic_version")
            ).scalar()
    finally:
        await db.dispose()
    assert differences == []
    assert version is not None
