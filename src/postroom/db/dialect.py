"""What SQLite and PostgreSQL do differently, behind named functions.

Row locks need no branch: SQLAlchemy renders `FOR UPDATE [SKIP LOCKED]` on PostgreSQL and
nothing on SQLite, whose write transactions are already the only writer (`BEGIN IMMEDIATE`,
serialised in-process). What remains differs here:

- `advisory_lock`: PostgreSQL transaction-scoped advisory locks serialise work that has no row to
  lock yet (two deliveries of the same resent mail, two uploads of the same bytes, migrations);
  SQLite needs none.
- `insert_ignoring_conflict`: `INSERT … ON CONFLICT DO NOTHING` from each dialect's own module.
- `is_disk_full`: how each driver says that the disk is full.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

# Advisory lock namespaces (first key): one per kind of work, so unrelated locks never collide.
MIGRATIONS_LOCK = 727_001
BOOTSTRAP_LOCK = 727_002
MAIL_DEDUPE_LOCK = 727_004


def is_postgres(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "postgresql"


async def advisory_lock(conn: AsyncConnection, *keys: int) -> None:
    """Hold a lock on `keys` until the transaction ends (PostgreSQL); SQLite needs none."""
    if is_postgres(conn):
        await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(*keys)))


async def insert_ignoring_conflict(
    conn: AsyncConnection, table: sa.Table, values: dict[str, Any], index: Sequence[str]
) -> int:
    """Insert unless a row with the same `index` columns exists; the number of rows inserted."""
    insert = pg_insert if is_postgres(conn) else sqlite_insert
    result = await conn.execute(
        insert(table).values(**values).on_conflict_do_nothing(index_elements=list(index))
    )
    return int(result.rowcount)


# SQLite's SQLITE_FULL ("database or disk is full"); PostgreSQL's class 53 disk_full.
_SQLITE_FULL = 13
_PG_DISK_FULL = "53100"


def is_disk_full(error: BaseException) -> bool:
    """Whether a driver error says the database's disk is full (either database)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if getattr(current, "sqlite_errorcode", None) == _SQLITE_FULL:
            return True
        if getattr(current, "sqlstate", None) == _PG_DISK_FULL:
            return True
        if isinstance(current, OSError) and current.errno == errno.ENOSPC:
            return True
        if "database or disk is full" in str(current):
            return True
        current = getattr(current, "orig", None) or current.__cause__
    return False
