"""The job table as a work queue: claim, complete, retry, fail, release.

A claim stamps `claimed_by` (the worker's identity) and a lease, and counts the attempt. The pair
(`claimed_by`, `attempts`) is the claim's token: every later write is guarded by it, so a worker
whose lease expired and whose job was reclaimed by another can no longer record a result.

PostgreSQL: several processes claim concurrently with `FOR UPDATE SKIP LOCKED`. SQLite: the same
statement, without the locking clause, runs inside `db.transaction()` which is already the only
writer (BEGIN IMMEDIATE, serialised in-process).
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom import metrics
from postroom.clock import utcnow
from postroom.db import tables as t
from postroom.db.engine import Database
from postroom.status import JobKind, JobStatus

QUEUED, RUNNING, DONE, FAILED = (
    JobStatus.QUEUED,
    JobStatus.RUNNING,
    JobStatus.DONE,
    JobStatus.FAILED,
)
# Job kinds the gauges have reported (so an emptied kind drops to 0); "import" always shows.
_SEEN_KINDS: set[str] = {JobKind.IMPORT}


class LeaseLost(Exception):
    """The job's lease expired and another worker claimed it; this run's result is dropped."""


MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    annotation_id: int | None
    payload: dict[str, Any]
    attempts: int  # including this one
    claimed_by: str


def _mine(job: ClaimedJob) -> sa.ColumnElement[bool]:
    j = t.jobs.c
    return sa.and_(
        j.id == job.id,
        j.status == RUNNING,
        j.claimed_by == job.claimed_by,
        j.attempts == job.attempts,
    )


async def claim_jobs(
    db: Database, *, worker: str, kinds: Collection[str], limit: int, lease_s: float
) -> list[ClaimedJob]:
    """Claim up to `limit` due jobs of the given kinds (queued and due, or with an expired lease)."""
    j = t.jobs.c
    now = utcnow()
    due = sa.or_(
        sa.and_(j.status == QUEUED, j.run_after <= now),
        sa.and_(j.status == RUNNING, j.lease_until < now),
    )
    pick = sa.select(j.id).where(due, j.kind.in_(list(kinds))).order_by(j.id).limit(limit)
    if db.is_postgres:
        pick = pick.with_for_update(skip_locked=True)
    stmt = (
        t.jobs.update()
        .where(j.id.in_(pick.scalar_subquery()))
        .values(
            status=RUNNING,
            lease_until=now + timedelta(seconds=lease_s),
            claimed_by=worker,
            attempts=j.attempts + 1,
        )
        .returning(j.id, j.kind, j.annotation_id, j.payload, j.attempts)
    )
    async with db.transaction() as conn:
        rows = (await conn.execute(stmt)).all()
    claimed = [
        ClaimedJob(
            id=row.id,
            kind=row.kind,
            annotation_id=row.annotation_id,
            payload=row.payload if isinstance(row.payload, dict) else {},
            attempts=row.attempts,
            claimed_by=worker,
        )
        for row in rows
    ]
    return sorted(claimed, key=lambda job: job.id)


async def mark_done(conn: AsyncConnection, job: ClaimedJob) -> None:
    """Mark the job done in the caller's transaction; LeaseLost (→ roll back) if it is not ours."""
    result = await conn.execute(
        t.jobs.update()
        .where(_mine(job))
        .values(status=DONE, finished_at=utcnow(), lease_until=None, last_error=None)
    )
    if result.rowcount != 1:
        raise LeaseLost(f"job {job.id} is no longer claimed by {job.claimed_by}")


async def mark_failed(conn: AsyncConnection, job: ClaimedJob, error: str) -> None:
    """Mark the job failed for good in the caller's transaction (guarded like `mark_done`)."""
    result = await conn.execute(
        t.jobs.update()
        .where(_mine(job))
        .values(
            status=FAILED,
            finished_at=utcnow(),
            lease_until=None,
            last_error=error[:MAX_ERROR_CHARS],
        )
    )
    if result.rowcount != 1:
        raise LeaseLost(f"job {job.id} is no longer claimed by {job.claimed_by}")


async def schedule_retry(db: Database, job: ClaimedJob, *, delay: float, error: str) -> bool:
    """Put the job back in the queue to run after `delay` seconds; False if it was not ours."""
    async with db.transaction() as conn:
        result = await conn.execute(
            t.jobs.update()
            .where(_mine(job))
            .values(
                status=QUEUED,
                run_after=utcnow() + timedelta(seconds=delay),
                lease_until=None,
                claimed_by=None,
                last_error=error[:MAX_ERROR_CHARS],
            )
        )
    return result.rowcount == 1


async def release_jobs(db: Database, worker: str, job_ids: Collection[int] | None = None) -> int:
    """Give back jobs this worker claimed but did not run to the end (shutdown): queued again,
    runnable at once, and the unfinished attempt is not counted."""
    j = t.jobs.c
    stmt = (
        t.jobs.update()
        .where(j.claimed_by == worker, j.status == RUNNING)
        .values(status=QUEUED, claimed_by=None, lease_until=None, attempts=j.attempts - 1)
    )
    if job_ids is not None:
        if not job_ids:
            return 0
        stmt = stmt.where(j.id.in_(list(job_ids)))
    async with db.transaction() as conn:
        result = await conn.execute(stmt)
    return int(result.rowcount)


async def reclaim_dead_local(db: Database, me: WorkerIdentity) -> int:
    """Release at once the running jobs of dead processes on this host (a crashed earlier run of
    this service, say), instead of waiting for their leases. Their attempt still counts, so a
    job that kills its process cannot loop forever."""
    j = t.jobs.c
    async with db.reading() as conn:
        holders = (
            await conn.execute(
                sa.select(j.claimed_by)
                .where(j.status == RUNNING, j.claimed_by.like(f"{me.host}:%"))
                .distinct()
            )
        ).scalars()
        dead = [h for h in holders if h and me.holder_is_dead(h)]
    if not dead:
        return 0
    async with db.transaction() as conn:
        result = await conn.execute(
            t.jobs.update()
            .where(j.status == RUNNING, j.claimed_by.in_(dead))
            .values(status=QUEUED, claimed_by=None, lease_until=None, run_after=utcnow())
        )
    return int(result.rowcount)


async def enqueue(
    conn: AsyncConnection, kind: str, annotation_id: int, payload: dict[str, Any]
) -> None:
    """One queued job, due now (the caller wakes the workers after the commit)."""
    now = utcnow()
    await conn.execute(
        t.jobs.insert().values(
            kind=kind,
            annotation_id=annotation_id,
            payload=payload,
            status=QUEUED,
            attempts=0,
            run_after=now,
            created_at=now,
        )
    )


async def last_payload(conn: AsyncConnection, kind: str, annotation_id: int) -> dict[str, Any]:
    """The payload of the annotation's latest job of `kind` ({} when none is left)."""
    j = t.jobs.c
    found = await conn.execute(
        sa.select(j.payload)
        .where(j.annotation_id == annotation_id, j.kind == kind)
        .order_by(j.id.desc())
        .limit(1)
    )
    payload = found.scalar_one_or_none()
    return payload if isinstance(payload, dict) else {}


async def purge_finished_jobs(db: Database, older_than: datetime) -> int:
    """Delete done/failed jobs finished before `older_than` (for a background duty)."""
    j = t.jobs.c
    async with db.transaction() as conn:
        result = await conn.execute(
            t.jobs.delete().where(j.status.in_((DONE, FAILED)), j.finished_at < older_than)
        )
    return int(result.rowcount)


# Identities of the worker pools alive in this Python process: tests (and embedders) may run
# several services in one process, which share host and pid but are not dead.
_LIVE_IN_PROCESS: set[str] = set()


@dataclass(frozen=True)
class WorkerIdentity:
    """`host:pid:start` — who holds a job. `start` tells a restarted process (same pid, as in a
    container where the service is always pid 1) from the one that claimed the job."""

    host: str
    pid: int
    start: str

    @classmethod
    def new(cls) -> WorkerIdentity:
        import socket
        import time

        host = socket.gethostname().replace(":", "_")[:36] or "host"
        return cls(host=host, pid=os.getpid(), start=format(time.time_ns() // 1000, "x"))

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.start}"

    def register(self) -> None:
        _LIVE_IN_PROCESS.add(str(self))

    def unregister(self) -> None:
        _LIVE_IN_PROCESS.discard(str(self))

    def holder_is_dead(self, holder: str) -> bool:
        host, _, rest = holder.partition(":")
        pid_text, _, _start = rest.partition(":")
        if host != self.host or not pid_text.isdigit() or holder in _LIVE_IN_PROCESS:
            return False
        pid = int(pid_text)
        if pid == self.pid:
            return True  # our pid, but not a pool alive in this process: an earlier incarnation
        return not _pid_alive(pid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


async def refresh_gauges(db: Database) -> None:
    """Set the pipeline gauges from the shared jobs table (called when /metrics is scraped)."""
    async with db.reading() as conn:
        await _refresh_gauges(conn)


async def _refresh_gauges(conn: AsyncConnection) -> None:
    j = t.jobs
    rows = await conn.execute(
        sa.select(j.c.kind, j.c.status, sa.func.count())
        .where(j.c.status.in_(("queued", "running")))
        .group_by(j.c.kind, j.c.status)
    )
    depth: dict[str, int] = {}
    running: dict[str, int] = {}
    for kind, status, count in rows:
        (depth if status == "queued" else running)[kind] = count
    # Kinds seen before but now empty must read 0, not keep their last value.
    _SEEN_KINDS.update(depth, running)
    for kind in _SEEN_KINDS:
        metrics.QUEUE_DEPTH.labels(kind=kind).set(depth.get(kind, 0))
        metrics.JOBS_RUNNING.labels(kind=kind).set(running.get(kind, 0))
    now = utcnow()
    oldest = (
        await conn.execute(
            sa.select(sa.func.min(j.c.run_after)).where(
                j.c.status == "queued", j.c.run_after <= now
            )
        )
    ).scalar_one_or_none()
    metrics.OLDEST_QUEUED_AGE.set(
        max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    )
