"""Deleting a queue: scheduled by the API, then carried out for good by a background duty —
its annotations, documents, uploads, emails, inbox and blobs.

`DELETE /queues/{id}` (`schedule_deletion`) only marks the queue `deletion_requested` with a
`delete_after` time (24 hours ahead unless the caller names another delay), unlinks its
workspace and stops its import at once, as the reference does; the background duty calls
`delete_queue` once that time has passed. The work goes in batches, one
short transaction each (a big queue never holds the database for long), with the queue in
`deletion_in_progress` meanwhile; a crash leaves it there and the next sweep resumes. Blobs are
deleted after each commit, and only when no remaining document or email references them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.clock import utcnow
from postroom.db import tables as t
from postroom.domain.access import Actor
from postroom.domain.purge import release_blobs
from postroom.domain.queues import QUEUES
from postroom.durations import parse_duration
from postroom.errors import BadRequest, ConflictStatus
from postroom.runtime import Runtime
from postroom.status import QueueStatus

log = logging.getLogger("postroom.duties")

BATCH = 500
Renew = Callable[[], Awaitable[None]]

DEFAULT_DELETE_AFTER = timedelta(hours=24)

a, d, q, e, u = t.annotations.c, t.documents.c, t.queues.c, t.emails.c, t.uploads.c


def _delete_delay(raw: str) -> timedelta:
    if raw == "":
        return DEFAULT_DELETE_AFTER
    delay = parse_duration(raw)
    if delay is None:
        raise BadRequest(
            f"delete_after: expected a duration as HH:MM:SS (e.g. 24:00:00), got {raw!r}."
        )
    return delay


async def schedule_deletion(rt: Runtime, who: Actor, queue_id: int, delete_after: str) -> None:
    """Mark the queue for deletion after `delete_after` ('' for the default 24 hours); 409 when
    it is already being deleted."""
    async with rt.db.reading() as conn:
        await QUEUES.load(conn, who, queue_id)  # 404 before 403
    who.require_manager()
    delay = _delete_delay(delete_after)
    now = utcnow()
    async with rt.db.transaction() as conn:
        row = await QUEUES.load(conn, who, queue_id)
        if row.status != QueueStatus.ACTIVE:
            raise ConflictStatus(f"Queue {queue_id} is already being deleted ({row.status}).")
        changed = await conn.execute(
            t.queues.update()
            .where(q.id == queue_id, q.status == QueueStatus.ACTIVE)
            .values(
                status=QueueStatus.DELETION_REQUESTED,
                delete_after=now + delay,
                workspace_id=None,
                modified_by_id=who.user_id,
                modified_at=now,
            )
        )
        if changed.rowcount != 1:
            # A concurrent DELETE (PostgreSQL) marked it between our read and our update.
            raise ConflictStatus(f"Queue {queue_id} is already being deleted.")


async def due_queue_ids(rt: Runtime) -> list[int]:
    """Queues whose deletion is due, and deletions a crash interrupted."""
    async with rt.db.reading() as conn:
        rows = await conn.execute(
            sa.select(q.id)
            .where(
                sa.or_(
                    sa.and_(q.status == QueueStatus.DELETION_REQUESTED, q.delete_after <= utcnow()),
                    q.status == QueueStatus.DELETION_IN_PROGRESS,
                )
            )
            .order_by(q.id)
        )
        return [int(i) for i in rows.scalars()]


async def delete_due_queues(rt: Runtime, renew: Renew) -> int:
    """Delete every due queue; a failure marks that queue `deletion_failed` and goes on."""
    deleted = 0
    for queue_id in await due_queue_ids(rt):
        async with rt.db.transaction() as conn:
            started = await conn.execute(
                t.queues.update()
                .where(
                    q.id == queue_id,
                    q.status.in_(
                        (QueueStatus.DELETION_REQUESTED, QueueStatus.DELETION_IN_PROGRESS)
                    ),
                )
                .values(status=QueueStatus.DELETION_IN_PROGRESS, modified_at=utcnow())
            )
        if started.rowcount != 1:
            continue  # restored or handled meanwhile
        try:
            await delete_queue(rt, queue_id, renew)
        except Exception:
            log.exception("deleting queue %s failed", queue_id)
            async with rt.db.transaction() as conn:
                await conn.execute(
                    t.queues.update()
                    .where(q.id == queue_id)
                    .values(status=QueueStatus.DELETION_FAILED, modified_at=utcnow())
                )
            continue
        deleted += 1
    return deleted


async def delete_queue(rt: Runtime, queue_id: int, renew: Renew) -> None:
    """Remove everything of the queue, batch by batch, then the queue itself."""
    for step in (_annotations_batch, _uploads_batch, _emails_batch):
        while True:
            async with rt.db.transaction() as conn:
                more, keys = await step(conn, queue_id)
            await release_blobs(rt, keys)
            await renew()
            if not more:
                break
    async with rt.db.transaction() as conn:
        inbox_id = (
            await conn.execute(sa.select(q.inbox_id).where(q.id == queue_id))
        ).scalar_one_or_none()
        await conn.execute(t.queues.delete().where(q.id == queue_id))
        if inbox_id is not None:
            shared = (
                await conn.execute(sa.select(q.id).where(q.inbox_id == inbox_id).limit(1))
            ).first()
            if shared is None:
                await conn.execute(t.inboxes.delete().where(t.inboxes.c.id == inbox_id))
    log.info("queue %s deleted", queue_id)


async def _delete_documents(conn: AsyncConnection, doc_ids: list[int]) -> set[str]:
    """Delete the documents no annotation refers to any more; returns their blob keys."""
    if not doc_ids:
        return set()
    unused = sa.and_(d.id.in_(doc_ids), ~sa.exists().where(a.document_id == d.id))
    keys = set(
        (await conn.execute(sa.select(d.s3_name).where(unused, d.s3_name.is_not(None)))).scalars()
    )
    # Children made by a split point at their parent: unlink them first.
    await conn.execute(t.documents.update().where(d.parent_id.in_(doc_ids)).values(parent_id=None))
    await conn.execute(t.documents.delete().where(unused))
    return keys


async def _annotations_batch(conn: AsyncConnection, queue_id: int) -> tuple[bool, set[str]]:
    rows = (
        await conn.execute(
            sa.select(a.id, a.document_id).where(a.queue_id == queue_id).limit(BATCH)
        )
    ).all()
    if not rows:
        return False, set()
    # Jobs go with their annotation (ON DELETE CASCADE).
    await conn.execute(t.annotations.delete().where(a.id.in_([r.id for r in rows])))
    keys = await _delete_documents(conn, sorted({r.document_id for r in rows}))
    return len(rows) == BATCH, keys


async def _uploads_batch(conn: AsyncConnection, queue_id: int) -> tuple[bool, set[str]]:
    ids = [
        int(i)
        for i in (
            await conn.execute(sa.select(u.id).where(u.queue_id == queue_id).limit(BATCH))
        ).scalars()
    ]
    if not ids:
        return False, set()
    docs = [
        int(i) for i in (await conn.execute(sa.select(d.id).where(d.upload_id.in_(ids)))).scalars()
    ]
    keys = await _delete_documents(conn, docs)
    # Tasks and any documents left go with their upload (ON DELETE CASCADE).
    await conn.execute(t.uploads.delete().where(u.id.in_(ids)))
    return len(ids) == BATCH, keys


async def _emails_batch(conn: AsyncConnection, queue_id: int) -> tuple[bool, set[str]]:
    rows = (
        await conn.execute(sa.select(e.id, e.raw_blob).where(e.queue_id == queue_id).limit(BATCH))
    ).all()
    if not rows:
        return False, set()
    ids = [r.id for r in rows]
    docs = [
        int(i) for i in (await conn.execute(sa.select(d.id).where(d.email_id.in_(ids)))).scalars()
    ]
    keys = await _delete_documents(conn, docs) | {r.raw_blob for r in rows if r.raw_blob}
    await conn.execute(t.emails.update().where(e.parent_id.in_(ids)).values(parent_id=None))
    await conn.execute(t.emails.delete().where(e.id.in_(ids)))
    return len(rows) == BATCH, keys
