"""Deleting a queue for good: its annotations, documents, uploads, emails, inbox and blobs.

`DELETE /queues/{id}` only marks the queue `deletion_requested` with a `delete_after` time; the
background duty calls `delete_queue` once that time has passed. The work goes in batches, one
short transaction each (a big queue never holds the database for long), with the queue in
`deletion_in_progress` meanwhile; a crash leaves it there and the next sweep resumes. Blobs are
deleted after each commit, and only when no remaining document or email references them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.clock import utcnow
from postroom.db import tables as t
from postroom.purge import release_blobs
from postroom.services import Services

log = logging.getLogger("postroom.duties")

BATCH = 500
Renew = Callable[[], Awaitable[None]]

a, d, q, e, u = t.annotations.c, t.documents.c, t.queues.c, t.emails.c, t.uploads.c


async def due_queue_ids(svc: Services) -> list[int]:
    """Queues whose deletion is due, and deletions a crash interrupted."""
    async with svc.db.reading() as conn:
        rows = await conn.execute(
            sa.select(q.id)
            .where(
                sa.or_(
                    sa.and_(q.status == "deletion_requested", q.delete_after <= utcnow()),
                    q.status == "deletion_in_progress",
                )
            )
            .order_by(q.id)
        )
        return [int(i) for i in rows.scalars()]


async def delete_due_queues(svc: Services, renew: Renew) -> int:
    """Delete every due queue; a failure marks that queue `deletion_failed` and goes on."""
    deleted = 0
    for queue_id in await due_queue_ids(svc):
        async with svc.db.transaction() as conn:
            started = await conn.execute(
                t.queues.update()
                .where(
                    q.id == queue_id,
                    q.status.in_(("deletion_requested", "deletion_in_progress")),
                )
                .values(status="deletion_in_progress", modified_at=utcnow())
            )
        if started.rowcount != 1:
            continue  # restored or handled meanwhile
        try:
            await delete_queue(svc, queue_id, renew)
        except Exception:
            log.exception("deleting queue %s failed", queue_id)
            async with svc.db.transaction() as conn:
                await conn.execute(
                    t.queues.update()
                    .where(q.id == queue_id)
                    .values(status="deletion_failed", modified_at=utcnow())
                )
            continue
        deleted += 1
    return deleted


async def delete_queue(svc: Services, queue_id: int, renew: Renew) -> None:
    """Remove everything of the queue, batch by batch, then the queue itself."""
    for step in (_annotations_batch, _uploads_batch, _emails_batch):
        while True:
            async with svc.db.transaction() as conn:
                more, keys = await step(conn, queue_id)
            await release_blobs(svc, keys)
            await renew()
            if not more:
                break
    async with svc.db.transaction() as conn:
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
