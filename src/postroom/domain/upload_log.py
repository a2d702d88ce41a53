"""Uploads as operators read them: who sent which files when, into which queue, and what became
of each file (its annotation's status and, when it failed, why).

The rows are those `domain.uploads` lets the actor see; e-mails' uploads are left out (the mail
log shows those) unless asked for with `channel=email`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.db import tables as t
from postroom.domain.access import Actor
from postroom.domain.listing import Filter, Listing, Page, PageRequest, fetch_page
from postroom.domain.uploads import UPLOADS
from postroom.runtime import Runtime

u, us, q, tk = t.uploads.c, t.users.c, t.queues.c, t.tasks.c


def _channel(raw: str) -> sa.ColumnElement[bool]:
    if raw == "email":
        return u.email_id.is_not(None)
    if raw == "any":
        return sa.true()
    return u.email_id.is_(None)


LISTING = Listing(
    filters=(
        Filter("queue", u.queue_id),
        Filter("user", us.username, "icontains"),
        Filter("created_after", u.created_at, "after"),
        Filter("created_before", u.created_at, "before"),
    ),
    ordering={"created_at": u.created_at, "id": u.id},
    default=(u.id.desc(),),
)


async def page_of(
    rt: Runtime, who: Actor, query: Mapping[str, str], page: PageRequest
) -> Page[dict[str, Any]]:
    """Uploads, newest first, each with its files and their outcome."""
    stmt: sa.Select[Any] = (
        sa.select(
            u.id,
            u.created_at,
            u.queue_id,
            u.email_id,
            q.name.label("queue_name"),
            us.username,
            tk.status.label("task_status"),
            tk.detail.label("task_detail"),
        )
        .select_from(
            t.uploads.outerjoin(t.users, us.id == u.creator_id)
            .outerjoin(t.queues, q.id == u.queue_id)
            .outerjoin(t.tasks, tk.upload_id == u.id)
        )
        .where(UPLOADS.visible(who), _channel(query.get("channel", "")))
    )
    stmt = LISTING.apply(stmt, query)
    async with rt.db.reading() as conn:
        rows, total = await fetch_page(conn, stmt, page)
        files = await _files_of(conn, [row.id for row in rows])
    items = [{**row._mapping, "files": files.get(row.id, [])} for row in rows]
    return Page(items, total, page)


async def _files_of(
    conn: AsyncConnection, upload_ids: list[int]
) -> dict[int, list[dict[str, Any]]]:
    d, a = t.documents.c, t.annotations.c
    found: dict[int, list[dict[str, Any]]] = {}
    if not upload_ids:
        return found
    stmt = (
        sa.select(
            d.upload_id,
            d.id,
            d.original_file_name,
            d.size,
            d.mime_type,
            a.id.label("annotation_id"),
            a.status,
            a.messages,
        )
        .select_from(t.documents.outerjoin(t.annotations, a.document_id == d.id))
        .where(d.upload_id.in_(upload_ids))
        .order_by(d.id)
    )
    for row in await conn.execute(stmt):
        messages = row.messages if isinstance(row.messages, list) else []
        reason = next(
            (m.get("content") for m in messages if isinstance(m, dict) and m.get("content")), None
        )
        found.setdefault(row.upload_id, []).append(
            {
                "document_id": row.id,
                "name": row.original_file_name,
                "size": row.size,
                "mime_type": row.mime_type,
                "annotation_id": row.annotation_id,
                "status": row.status,
                "reason": reason,
            }
        )
    return found
