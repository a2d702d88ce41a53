"""The database handle: one AsyncEngine for SQLite (aiosqlite) or PostgreSQL (asyncpg).

Writes go through `Database.transaction()`. SQLite allows one writer at a time and its lock is
unfair under contention (docs/MEASURED.md), so in one process every write transaction is
serialised by an asyncio lock and opened with `BEGIN IMMEDIATE`; reads never take that lock.
PostgreSQL needs neither: its transactions run concurrently.

A write that a uniqueness constraint refuses (two requests racing for one name or address) ends
as `errors.ConcurrentChange` (409): the transaction is rolled back and nothing is half-written.
A write the database cannot make because its disk is full ends as `errors.InsufficientStorage`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from postroom.db.dialect import is_disk_full
from postroom.errors import ConcurrentChange, InsufficientStorage

WRITE_OPTION = "postroom_write"


class Database:
    def __init__(self, url: str, *, pool_size: int = 10, sqlite_synchronous: str = "FULL") -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.is_postgres = not self.is_sqlite
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        kwargs: dict[str, Any] = {"pool_pre_ping": False}
        # Both: connections beyond pool_size are opened and closed per use, which on SQLite
        # means a new aiosqlite thread and the PRAGMAs each time, so keep enough of them.
        kwargs.update(pool_size=pool_size, max_overflow=pool_size)
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30}
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine, sqlite_synchronous)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed on exit (rolled back on error)."""
        try:
            if self._write_lock is None:
                async with self.engine.begin() as conn:
                    yield conn
                return
            async with self._write_lock, self.engine.connect() as conn:
                conn = await conn.execution_options(**{WRITE_OPTION: True})
                async with conn.begin():
                    yield conn
        except IntegrityError as exc:
            raise ConcurrentChange() from exc
        except (DBAPIError, OSError) as exc:
            if is_disk_full(exc):
                raise InsufficientStorage() from exc
            raise

    @asynccontextmanager
    async def schema_transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction for migrations. On SQLite it runs with foreign keys off: a
        migration that rebuilds a table drops the old one, and with them on, that drop would
        cascade into every row referring to it. The references are checked before commit."""
        if self._write_lock is None:
            async with self.transaction() as conn:
                yield conn
            return
        async with self._write_lock, self.engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None  # a checked-out connection has its driver connection
            # Outside a transaction: SQLite ignores this pragma inside one.
            await raw.execute("PRAGMA foreign_keys=OFF")
            try:
                conn = await conn.execution_options(**{WRITE_OPTION: True})
                async with conn.begin():
                    yield conn
                    broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).first()
                    if broken is not None:
                        raise RuntimeError(f"migration left a broken reference: {tuple(broken)}")
            finally:
                await raw.execute("PRAGMA foreign_keys=ON")

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        """A read-only snapshot (a plain deferred transaction)."""
        async with self.engine.connect() as conn:
            yield conn

    async def ping(self) -> bool:
        try:
            async with asyncio.timeout(3), self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except Exception:  # any driver error means "not reachable" to the health check
            return False
        return True

    async def dispose(self) -> None:
        await self.engine.dispose()


def _configure_sqlite(engine: AsyncEngine, synchronous: str) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us emit BEGIN ourselves (pysqlite's implicit transactions get in the way).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit survives power loss, which a 201/250 promises (NORMAL does not).
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
