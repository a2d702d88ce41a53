"""Background duties, run every `pipeline.sweep_interval` seconds by one process at a time.

- Session timeouts: an annotation left `reviewing` longer than its queue's `session_timeout`
  goes back to `to_review`.
- Queue deletion: queues in `deletion_requested` whose `delete_after` has passed are deleted
  with their annotations, documents, uploads, emails and unreferenced blobs
  (`domain.queue_deletion`).
- Retention: annotations older than their queue's `document_lifetime` are purged
  (`domain.purge`).
- Housekeeping: finished pipeline jobs older than a week are forgotten; idempotency keys older
  than 24 hours are deleted (`domain.idempotency`); every few hours, blobs left unreferenced by
  a crash are removed (`domain.purge.sweep_orphan_blobs`).

Several Postroom processes may share one database: a lease row in `duty_leases` names the one
that sweeps. It is taken when free or expired, renewed while sweeping, and given up on stop; a
process that dies loses it when it expires (a few sweep intervals), and another takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import sqlalchemy as sa

from postroom.clock import utcnow
from postroom.db import tables as t
from postroom.db.dialect import insert_ignoring_conflict
from postroom.domain import idempotency, lifecycle
from postroom.domain.jobs import WorkerIdentity, purge_finished_jobs
from postroom.domain.purge import purge_annotations, sweep_orphan_blobs
from postroom.domain.queue_deletion import delete_due_queues
from postroom.durations import parse_duration
from postroom.runtime import Runtime
from postroom.status import AnnotationStatus

log = logging.getLogger("postroom.duties")

LEASE_NAME = "sweep"
MIN_LEASE_S = 30.0
FINISHED_JOBS_KEPT = timedelta(days=7)
# Listing every blob is not free on a large store: do it at start-up, then this often.
ORPHAN_SWEEP_EVERY_S = 6 * 3600.0

a, q = t.annotations.c, t.queues.c


class DutyLease:
    """The `duty_leases` row that makes one process the sweeper."""

    def __init__(self, rt: Runtime, holder: str, seconds: float) -> None:
        self.rt = rt
        self.holder = holder
        self.seconds = seconds

    async def acquire(self) -> bool:
        """Take or renew the lease; False while another live process holds it."""
        now = utcnow()
        until = now + timedelta(seconds=self.seconds)
        lease = t.duty_leases.c
        async with self.rt.db.transaction() as conn:
            taken = await conn.execute(
                t.duty_leases.update()
                .where(
                    lease.name == LEASE_NAME,
                    sa.or_(lease.holder == self.holder, lease.lease_until < now),
                )
                .values(holder=self.holder, lease_until=until)
            )
            if taken.rowcount == 1:
                return True
            values = {"name": LEASE_NAME, "holder": self.holder, "lease_until": until}
            return await insert_ignoring_conflict(conn, t.duty_leases, values, ["name"]) == 1

    async def release(self) -> None:
        lease = t.duty_leases.c
        async with self.rt.db.transaction() as conn:
            await conn.execute(
                t.duty_leases.delete().where(lease.name == LEASE_NAME, lease.holder == self.holder)
            )


async def release_expired_sessions(rt: Runtime) -> int:
    """reviewing → to_review for sessions older than their queue's session_timeout."""
    now = utcnow()
    async with rt.db.reading() as conn:
        queues = (
            await conn.execute(
                sa.select(q.id, q.session_timeout)
                .where(
                    q.id.in_(sa.select(a.queue_id).where(a.status == AnnotationStatus.REVIEWING))
                )
                .order_by(q.id)
            )
        ).all()
    released = 0
    for queue_id, raw in queues:
        timeout = parse_duration(raw or "")
        if timeout is None:
            log.warning("queue %s: unreadable session_timeout %r", queue_id, raw)
            continue
        async with rt.db.transaction() as conn:
            moved = await lifecycle.move_where(
                conn,
                AnnotationStatus.TO_REVIEW,
                a.queue_id == queue_id,
                a.assigned_at < now - timeout,
                actor_id=None,
                only_from=[AnnotationStatus.REVIEWING],
            )
        released += len(moved)
    return released


async def purge_expired_annotations(rt: Runtime) -> int:
    """Purge the annotations older than their queue's document_lifetime."""
    now = utcnow()
    async with rt.db.reading() as conn:
        queues = (
            await conn.execute(
                sa.select(q.id, q.document_lifetime).where(
                    q.document_lifetime.is_not(None), q.document_lifetime != ""
                )
            )
        ).all()
    purged = 0
    for queue_id, raw in queues:
        lifetime = parse_duration(raw)
        if lifetime is None:
            log.warning("queue %s: unreadable document_lifetime %r", queue_id, raw)
            continue
        purged += await purge_annotations(
            rt, a.queue_id == queue_id, a.created_at < now - lifetime, actor_id=None
        )
    return purged


class OrphanBlobSweep:
    """Runs `sweep_orphan_blobs` at most every ORPHAN_SWEEP_EVERY_S seconds."""

    def __init__(self) -> None:
        self._next = 0.0

    async def __call__(self, rt: Runtime) -> int:
        loop_time = asyncio.get_running_loop().time()
        if loop_time < self._next:
            return 0
        self._next = loop_time + ORPHAN_SWEEP_EVERY_S
        return await sweep_orphan_blobs(rt)


async def sweep(
    rt: Runtime, renew: Callable[[], Awaitable[None]], orphans: OrphanBlobSweep | None = None
) -> None:
    """One round of every duty; one duty failing does not stop the others."""
    orphans = orphans or OrphanBlobSweep()
    duties: tuple[tuple[str, Callable[[], Awaitable[int]]], ...] = (
        ("session timeouts", lambda: release_expired_sessions(rt)),
        ("queue deletion", lambda: delete_due_queues(rt, renew)),
        ("retention", lambda: purge_expired_annotations(rt)),
        ("finished jobs", lambda: purge_finished_jobs(rt.db, _week_ago())),
        ("idempotency keys", lambda: idempotency.purge_expired(rt.db, utcnow())),
        ("orphan blobs", lambda: orphans(rt)),
    )
    for name, duty in duties:
        try:
            done = await duty()
        except Exception:
            log.exception("background duty %s failed", name)
            continue
        if done:
            log.info("background duty %s: %d", name, done)


def _week_ago() -> datetime:
    return utcnow() - FINISHED_JOBS_KEPT


async def start_duties(rt: Runtime) -> Callable[[], Awaitable[None]]:
    interval = rt.settings.pipeline.sweep_interval
    lease = DutyLease(rt, str(WorkerIdentity.new()), max(MIN_LEASE_S, 3 * interval))
    stopping = asyncio.Event()
    orphans = OrphanBlobSweep()

    async def renew() -> None:
        await lease.acquire()

    async def run() -> None:
        while not stopping.is_set():
            try:
                if await lease.acquire():
                    await sweep(rt, renew, orphans)
            except Exception:
                log.exception("background duties failed; retrying next interval")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), interval)

    task = asyncio.create_task(run(), name="postroom-duties")

    async def stop() -> None:
        stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), 5)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await lease.release()

    return stop
