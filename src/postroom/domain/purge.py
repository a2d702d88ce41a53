"""Purging: wipe an annotation's data and its document's bytes, keeping the records (`purged`).

Used by `POST /annotations/purge_deleted` and by the data-retention duty (queue
`document_lifetime`). Work goes in batches, one short transaction each: the annotations move to
`purged` (content wiped), their documents lose file name and blob key; after the commit, blobs
that no document or email references any more are deleted from the store. The bytes are
content-addressed and may be shared by several documents, so a blob goes only with its last
reference.

`sweep_orphan_blobs` collects what a crash can leave behind: blobs whose record never committed,
or whose deletion was interrupted. It only takes blobs idle for an hour (a blob reused by an
upload gets a fresh mtime), so an upload between storing its bytes and committing is safe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.db import tables as t
from postroom.domain import lifecycle
from postroom.runtime import Runtime
from postroom.status import AnnotationStatus

BATCH = 500

a = t.annotations.c
d = t.documents.c


async def purge_annotations(
    rt: Runtime,
    *where: sa.ColumnElement[bool],
    actor_id: int | None,
    only_from: Iterable[AnnotationStatus] | None = None,
) -> int:
    """Purge every annotation matching `where` (and `only_from` statuses); returns how many."""
    sources = lifecycle.allowed_sources(AnnotationStatus.PURGED, only_from)
    total = 0
    while True:
        async with rt.db.transaction() as conn:
            # Concurrent purgers (PostgreSQL) each take rows the others have not locked.
            pick = (
                sa.select(a.id)
                .where(a.status.in_(sources), *where)
                .order_by(a.id)
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            )
            ids = [int(i) for i in (await conn.execute(pick)).scalars()]
            if not ids:
                return total
            moved = await lifecycle.move_where(
                conn,
                AnnotationStatus.PURGED,
                a.id.in_(ids),
                actor_id=actor_id,
                only_from=sources,
                values={"content": [], "messages": []},
            )
            keys = await _wipe_documents(conn, moved)
        if not moved:
            return total  # the picked rows changed under us: leave them to the next call
        total += len(moved)
        await release_blobs(rt, keys)


async def _wipe_documents(conn: AsyncConnection, annotation_ids: list[int]) -> set[str]:
    """Forget the file names and bytes of these annotations' documents; returns their blob keys."""
    if not annotation_ids:
        return set()
    docs = sa.select(a.document_id).where(a.id.in_(annotation_ids)).scalar_subquery()
    keys = {
        key
        for key in (
            await conn.execute(sa.select(d.s3_name).where(d.id.in_(docs), d.s3_name.is_not(None)))
        ).scalars()
    }
    await conn.execute(
        t.documents.update().where(d.id.in_(docs)).values(s3_name=None, original_file_name="")
    )
    return keys


async def release_blobs(rt: Runtime, keys: Collection[str]) -> int:
    """Delete the blobs among `keys` that no document and no stored email references; returns
    how many were deleted."""
    deleted = 0
    pending = sorted(keys)
    for start in range(0, len(pending), BATCH):
        chunk = pending[start : start + BATCH]
        async with rt.db.reading() as conn:
            in_use = set(
                (
                    await conn.execute(
                        sa.union(
                            sa.select(d.s3_name).where(d.s3_name.in_(chunk)),
                            sa.select(t.emails.c.raw_blob).where(t.emails.c.raw_blob.in_(chunk)),
                        )
                    )
                ).scalars()
            )
        for key in chunk:
            if key not in in_use:
                await rt.blobs.delete(key)
                deleted += 1
    return deleted


ORPHAN_IDLE_S = 3600.0


async def sweep_orphan_blobs(rt: Runtime, idle_s: float = ORPHAN_IDLE_S) -> int:
    """Delete blobs idle for `idle_s` that no document or email references; returns how many."""
    keys = await asyncio.to_thread(rt.blobs.idle_keys, idle_s)
    return await release_blobs(rt, keys) if keys else 0
