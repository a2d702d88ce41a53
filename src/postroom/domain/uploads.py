"""Uploads: the record of one submission of files into a queue (HTTP upload or e-mail), with the
documents and annotations it created. Visible through its queue.

Also the answers of the upload endpoints: one (annotation, document) pair per file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from typing_extensions import TypedDict

from postroom.clock import iso
from postroom.db import tables as t
from postroom.domain.access import Actor, visible_queues_clause
from postroom.domain.listing import Filter, Listing
from postroom.domain.relations import ids_by_owner
from postroom.domain.resources import Resource
from postroom.fields import OptionalUrl, Timestamp, Url
from postroom.urls import Urls

u = t.uploads


class UploadJson(TypedDict):
    id: int
    url: Url
    queue: OptionalUrl
    organization: Url
    creator: OptionalUrl
    created_at: Timestamp
    email: OptionalUrl
    documents: list[Url]
    additional_documents: list[Url]
    annotations: list[Url]


class UploadResultJson(TypedDict):
    """One file of an upload: its annotation (null for a file kept as a document only)."""

    annotation: OptionalUrl
    document: Url


class QueueUploadJson(TypedDict):
    """`POST /queues/{id}/upload`: every file's pair, and the first one's again."""

    results: list[UploadResultJson]
    annotation: OptionalUrl
    document: Url


class UploadTaskJson(TypedDict):
    """`POST /uploads`: the task to follow, and the pairs (the records exist already)."""

    url: Url
    results: list[UploadResultJson]


def results(urls: Urls, documents: Sequence[tuple[int, int | None]]) -> list[UploadResultJson]:
    """(document id, annotation id) pairs as the upload endpoints answer them."""
    return [
        {"annotation": urls.of("annotations", a), "document": urls.to("documents", d)}
        for d, a in documents
    ]


def visible_by_origin(who: Actor, table: sa.Table) -> sa.ColumnElement[bool]:
    """Rows (documents, tasks) of the actor's organization that came with an upload or an e-mail
    into a queue the actor sees, or with neither and were created by the actor. Admins and
    managers see every row of their organization."""
    c, u, e = table.c, t.uploads.c, t.emails.c
    if who.sees_all_queues:
        return c.organization_id == who.organization_id
    upload_queue = sa.select(u.queue_id).where(u.id == c.upload_id).scalar_subquery()
    email_queue = sa.select(e.queue_id).where(e.id == c.email_id).scalar_subquery()
    return sa.and_(
        c.organization_id == who.organization_id,
        sa.or_(
            sa.and_(c.upload_id.is_not(None), visible_queues_clause(who, upload_queue)),
            sa.and_(
                c.upload_id.is_(None),
                c.email_id.is_not(None),
                visible_queues_clause(who, email_queue),
            ),
            sa.and_(c.upload_id.is_(None), c.email_id.is_(None), c.creator_id == who.user_id),
        ),
    )


class Uploads(Resource[UploadJson]):
    noun = "Upload"
    table = u
    queue_column = "queue_id"
    listing = Listing(
        filters=(
            Filter("id", u.c.id),
            Filter("queue", u.c.queue_id),
            Filter("creator", u.c.creator_id),
            Filter("email", u.c.email_id),
            Filter("created_at_before", u.c.created_at, "before"),
            Filter("created_at_after", u.c.created_at, "after"),
        ),
        ordering={"id": u.c.id, "created_at": u.c.created_at},
        default=(u.c.id,),
    )

    async def render(
        self, conn: AsyncConnection, urls: Urls, who: Actor, rows: Sequence[Any]
    ) -> list[UploadJson]:
        ids = [row.id for row in rows]
        d, a = t.documents.c, t.annotations.c
        documents = await ids_by_owner(conn, d.upload_id, d.id, ids)
        annotations = await ids_by_owner(conn, a.upload_id, a.id, ids)
        return [
            {
                "id": row.id,
                "url": urls.to("uploads", row.id),
                "queue": urls.of("queues", row.queue_id),
                "organization": urls.to("organizations", row.organization_id),
                "creator": urls.of("users", row.creator_id),
                "created_at": iso(row.created_at),
                "email": urls.of("emails", row.email_id),
                "documents": urls.many("documents", documents[row.id]),
                "additional_documents": [],
                "annotations": urls.many("annotations", annotations[row.id]),
            }
            for row in rows
        ]


UPLOADS = Uploads()
