"""Group commit: the results of jobs that finish close together are written in one transaction.

Every import ends with a short write (job done, annotation moved, task settled). On SQLite each
write transaction takes the one write lock and pays an fsync; on PostgreSQL it pays a WAL flush.
So results are queued and one flusher writes everything that queued up while the previous
transaction ran: no added delay when idle, fewer commits under load.

A unit of work is an async function of the connection. In a batch each unit runs inside its own
savepoint: a unit that raises (LeaseLost, a 409 of an upload, a bug) is undone alone and its
caller gets the error, while the others commit. If the transaction itself fails (commit error,
lock timeout), every unit of the batch is written again in a transaction of its own.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.db.engine import Database

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

    async def run(self, work: Work, *, order: int = 0) -> Any:
        """Write `work` in the next group transaction; returns its result once committed."""
        unit = _Unit(work, order, asyncio.get_running_loop().create_future())
        self._pending.append(unit)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="pipeline-group-commit")
        # shield: a cancelled worker must not cancel the commit of the other units.
        return await asyncio.shield(unit.done)

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
                except Exception as error:
                    await savepoint.rollback()
                    outcomes.append((None, error))
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


_BY_DATABASE: weakref.WeakKeyDictionary[Database, GroupCommit] = weakref.WeakKeyDictionary()


def group_commit(db: Database) -> GroupCommit:
    """The group committer of this database handle (one per Database, made on first use)."""
    committer = _BY_DATABASE.get(db)
    if committer is None:
        committer = _BY_DATABASE[db] = GroupCommit(db)
    return committer
