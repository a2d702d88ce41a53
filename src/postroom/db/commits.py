"""Group commit: units of work that arrive together are written in one SQLite transaction.

Every acknowledged upload, every accepted mail and every finished import ends with one short
write. SQLite takes one writer at a time and pays an fsync per commit, so with many writers at
once the commits queue behind each other; here they are gathered instead: the first unit to
arrive starts a transaction right away (a lone unit waits for nothing), and units that arrive
meanwhile go together into the next one. Each unit runs inside its own savepoint: one that raises
(a 409 of an upload, a lost lease, a bug) is undone alone and its caller gets the error, while the
others commit. If the transaction itself fails (commit error, lock timeout), every unit of the
batch is written again in a transaction of its own. A caller learns its outcome only after the
transaction holding its unit has committed: the 201 or 250 still follows the commit.

PostgreSQL runs transactions side by side and groups WAL flushes itself: there each unit simply
commits in a transaction of its own, concurrently with the others.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.db.dialect import is_disk_full
from postroom.db.engine import Database
from postroom.errors import ConcurrentChange, InsufficientStorage

T = TypeVar("T")
Work = Callable[[AsyncConnection], Awaitable[Any]]

MAX_BATCH = 64


@dataclass
class _Unit:
    work: Work
    order: int  # units are written in this order: a consistent lock order across processes
    done: asyncio.Future[Any]


class GroupCommit:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._pending: list[_Unit] = []
        self._flusher: asyncio.Task[None] | None = None

    async def run(self, work: Callable[[AsyncConnection], Awaitable[T]], *, order: int = 0) -> T:
        """Write `work` in the next group transaction; returns its result once committed."""
        if not self.db.is_sqlite:
            async with self.db.transaction() as conn:
                return await work(conn)
        unit = _Unit(work, order, asyncio.get_running_loop().create_future())
        self._pending.append(unit)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="group-commit")
        # shield: a cancelled caller must not cancel the commit of the other units.
        result: T = await asyncio.shield(unit.done)
        return result

    async def drain(self) -> None:
        """Wait until everything queued so far is written (before the database is closed)."""
        if self._flusher is not None and not self._flusher.done():
            await asyncio.wait([self._flusher])

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            batch.sort(key=lambda unit: unit.order)
            if len(batch) == 1:  # nothing to isolate: no savepoint
                outcomes = [await self._write_alone(batch[0])]
            else:
                try:
                    outcomes = await self._write(batch)
                except Exception:
                    outcomes = [await self._write_alone(unit) for unit in batch]
            for unit, (result, error) in zip(batch, outcomes, strict=True):
                if unit.done.done():
                    continue
                if error is not None:
                    unit.done.set_exception(error)
                else:
                    unit.done.set_result(result)

    async def _write(self, batch: list[_Unit]) -> list[tuple[Any, BaseException | None]]:
        outcomes: list[tuple[Any, BaseException | None]] = []
        async with self.db.transaction() as conn:
            for unit in batch:
                # A savepoint per unit: one that fails is undone alone, the others still commit.
                savepoint = await conn.begin_nested()
                try:
                    result = await unit.work(conn)
                except IntegrityError as error:
                    await savepoint.rollback()
                    outcomes.append((None, _concurrent(error)))
                except Exception as error:
                    await savepoint.rollback()
                    full = is_disk_full(error)
                    outcomes.append((None, InsufficientStorage() if full else error))
                else:
                    await savepoint.commit()
                    outcomes.append((result, None))
        return outcomes

    async def _write_alone(self, unit: _Unit) -> tuple[Any, BaseException | None]:
        try:
            async with self.db.transaction() as conn:
                return await unit.work(conn), None
        except Exception as error:
            return None, error


def _concurrent(error: IntegrityError) -> ConcurrentChange:
    change = ConcurrentChange()
    change.__cause__ = error
    return change


_BY_DATABASE: weakref.WeakKeyDictionary[Database, GroupCommit] = weakref.WeakKeyDictionary()


def group_commit(db: Database) -> GroupCommit:
    """The group committer of this database handle (one per Database, made on first use)."""
    committer = _BY_DATABASE.get(db)
    if committer is None:
        committer = _BY_DATABASE[db] = GroupCommit(db)
    return committer
