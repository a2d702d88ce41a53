"""Group commit: the records of several messages arriving together are written in one transaction.

Every acknowledged message costs one durable commit (an fsync of the SQLite WAL, or of the
PostgreSQL WAL), and SQLite takes one writer at a time. With many senders at once the commits
queue behind each other; here they are gathered instead: the first delivery to arrive starts a
transaction right away (a lone message waits for nothing), and deliveries that arrive meanwhile
go together into the next one. Each delivery's work runs inside its own SAVEPOINT, so one that
fails is rolled back alone and the others still commit. A delivery learns its outcome only after
the transaction that holds it has committed — the 250 still follows the commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.db.engine import Database

log = logging.getLogger("postroom.smtp")

T = TypeVar("T")
Work = Callable[[AsyncConnection], Awaitable[Any]]
MAX_BATCH = 32


class CommitBatcher:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._waiting: list[tuple[Work, asyncio.Future[Any]]] = []
        self._leader: asyncio.Task[None] | None = None

    async def run(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run `work(conn)` in a shared transaction; return its result once that committed."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiting.append((work, future))
        if self._leader is None or self._leader.done():
            self._leader = asyncio.get_running_loop().create_task(self._commit_all())
        return await future

    async def _commit_all(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            await self._commit(batch)

    async def _commit(self, batch: list[tuple[Work, asyncio.Future[Any]]]) -> None:
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            async with self._db.transaction() as conn:
                if len(batch) == 1:  # alone: its failure rolls back the transaction, no savepoint
                    work, future = batch[0]
                    outcomes.append((future, await work(conn), None))
                for work, future in batch if len(batch) > 1 else []:
                    try:
                        async with conn.begin_nested():
                            outcome = await work(conn)
                        outcomes.append((future, outcome, None))
                    except Exception as error:  # this delivery only: its savepoint rolled back
                        outcomes.append((future, None, error))
        except Exception as error:  # the commit itself failed: nothing of the batch is stored
            for _work, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        except BaseException:  # cancelled (shutdown): the waiting deliveries are cancelled too
            for _work, future in batch:
                future.cancel()
            raise
        for future, outcome, failure in outcomes:
            if future.done():
                continue
            if failure is None:
                future.set_result(outcome)
            else:
                future.set_exception(failure)
