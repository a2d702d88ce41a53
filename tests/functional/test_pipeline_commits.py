"""Group commit on a real database: units written together, a failing unit isolated."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.db import tables as t
from postroom.db.commits import GroupCommit
from postroom.domain.jobs import LeaseLost
from tests.conftest import PG_URL, RunningServer

o = t.organizations


def _set(column: str, value: dict[str, int], calls: list[str]):  # type: ignore[no-untyped-def]
    async def work(conn: AsyncConnection) -> str:
        calls.append(column)
        await conn.execute(o.update().where(o.c.id == 1).values({column: value}))
        return column

    return work


async def test_a_failing_unit_does_not_take_the_batch_down(server: RunningServer) -> None:
    """Of four units queued together, the good ones commit once (same transaction), while the
    failing ones' changes are undone (savepoints) and their errors go to their callers alone."""
    assert server.service.runtime is not None
    db = server.service.runtime.db
    committer = GroupCommit(db)
    calls: list[str] = []

    async def broken(conn: AsyncConnection) -> None:
        await conn.execute(o.update().where(o.c.id == 1).values(name="half-written"))
        raise RuntimeError("bad unit")

    async def refused(conn: AsyncConnection) -> None:
        raise LeaseLost("not ours")

    results = await asyncio.gather(
        committer.run(_set("metadata", {"a": 1}, calls)),
        committer.run(broken),
        committer.run(refused),
        committer.run(_set("ui_settings", {"c": 3}, calls)),
        return_exceptions=True,
    )
    assert results[0] == "metadata" and results[3] == "ui_settings"
    assert isinstance(results[1], RuntimeError)
    assert isinstance(results[2], LeaseLost)
    async with db.reading() as conn:
        row = (await conn.execute(sa.select(o).where(o.c.id == 1))).one()
    assert row.metadata == {"a": 1} and row.ui_settings == {"c": 3}
    assert row.name != "half-written"
    assert calls == ["metadata", "ui_settings"]  # no unit was written a second time


@pytest.mark.skipif(
    bool(PG_URL),
    reason="PostgreSQL commits each unit in a transaction of its own (it groups WAL flushes itself)",
)
async def test_units_queued_together_share_one_transaction(server: RunningServer) -> None:
    """Units queued while nothing is flushing are written by one transaction (they see each
    other's uncommitted changes)."""
    assert server.service.runtime is not None
    committer = GroupCommit(server.service.runtime.db)

    async def first(conn: AsyncConnection) -> None:
        await conn.execute(o.update().where(o.c.id == 1).values(name="shared"))

    async def second(conn: AsyncConnection) -> str:
        return str((await conn.execute(sa.select(o.c.name).where(o.c.id == 1))).scalar_one())

    _r, seen = await asyncio.gather(committer.run(first), committer.run(second))
    assert seen == "shared"
    with pytest.raises(LeaseLost):

        async def lost(conn: AsyncConnection) -> None:
            raise LeaseLost("x")

        await committer.run(lost)


@pytest.mark.skipif(not PG_URL, reason="the PostgreSQL path of the group commit")
async def test_on_postgresql_each_unit_commits_alone(server: RunningServer) -> None:
    """On PostgreSQL a unit's changes are committed when `run` returns, and a failing unit leaves
    nothing behind while its neighbour commits."""
    assert server.service.runtime is not None
    db = server.service.runtime.db
    committer = GroupCommit(db)

    async def broken(conn: AsyncConnection) -> None:
        await conn.execute(o.update().where(o.c.id == 1).values(name="half-written"))
        raise RuntimeError("bad unit")

    async def good(conn: AsyncConnection) -> str:
        await conn.execute(o.update().where(o.c.id == 1).values(metadata={"pg": 1}))
        return "ok"

    with pytest.raises(RuntimeError):
        await committer.run(broken)
    assert await committer.run(good) == "ok"
    async with db.reading() as conn:
        row = (await conn.execute(sa.select(o).where(o.c.id == 1))).one()
    assert row.metadata == {"pg": 1} and row.name != "half-written"
