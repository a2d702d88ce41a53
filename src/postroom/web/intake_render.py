"""Intake records as Rossum JSON: Upload, Document and Task objects, and the child lists they show.

Shapes follow `## Upload`, `## Document` and `## Task` of the API reference, with every field the
rossum-api SDK requires present and non-null (SPEC §7).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.clock import iso
from postroom.db import tables as t
from postroom.web.urls import Urls

IMPORTING = "importing"


async def upload_children(
    conn: AsyncConnection, upload_ids: list[int]
) -> dict[int, tuple[list[int], list[int]]]:
    """upload id → (document ids, annotation ids), each in id order."""
    found: dict[int, tuple[list[int], list[int]]] = {uid: ([], []) for uid in upload_ids}
    if not upload_ids:
        return found
    d, a = t.documents.c, t.annotations.c
    docs = await conn.execute(
        sa.select(d.upload_id, d.id).where(d.upload_id.in_(upload_ids)).order_by(d.id)
    )
    for upload_id, document_id in docs:
        found[upload_id][0].append(document_id)
    anns = await conn.execute(
        sa.select(a.upload_id, a.id).where(a.upload_id.in_(upload_ids)).order_by(a.id)
    )
    for upload_id, annotation_id in anns:
        found[upload_id][1].append(annotation_id)
    return found


def render_upload(
    urls: Urls, row: Any, document_ids: list[int], annotation_ids: list[int]
) -> dict[str, Any]:
    return {
        "id": row.id,
        "url": urls.to("uploads", row.id),
        "queue": urls.of("queues", row.queue_id),
        "organization": urls.to("organizations", row.organization_id),
        "creator": urls.of("users", row.creator_id),
        "created_at": iso(row.created_at),
        "email": urls.of("emails", row.email_id),
        "documents": urls.many("documents", document_ids),
        "additional_documents": [],
        "annotations": urls.many("annotations", annotation_ids),
    }


async def document_annotations(
    conn: AsyncConnection, document_ids: list[int]
) -> dict[int, list[int]]:
    found: dict[int, list[int]] = defaultdict(list)
    if document_ids:
        a = t.annotations.c
        rows = await conn.execute(
            sa.select(a.document_id, a.id).where(a.document_id.in_(document_ids)).order_by(a.id)
        )
        for document_id, annotation_id in rows:
            found[document_id].append(annotation_id)
    return found


def render_document(urls: Urls, row: Any, annotation_ids: list[int]) -> dict[str, Any]:
    url = urls.to("documents", row.id)
    return {
        "id": row.id,
        "url": url,
        # The blob key; empty once the bytes were purged (the SDK needs a string).
        "s3_name": row.s3_name or "",
        "parent": urls.of("documents", row.parent_id),
        "email": urls.of("emails", row.email_id),
        "annotations": urls.many("annotations", annotation_ids),
        "mime_type": row.mime_type,
        "creator": urls.of("users", row.creator_id),
        "created_at": iso(row.created_at),
        "arrived_at": iso(row.arrived_at),
        "original_file_name": row.original_file_name,
        "content": url + "/content",
        "attachment_status": row.attachment_status,
        "metadata": row.metadata or {},
    }


async def task_status(conn: AsyncConnection, row: Any) -> str:
    """A stored final status wins; otherwise running while any annotation of the task's upload
    is still `importing`, succeeded once all have left it."""
    if row.status in ("succeeded", "failed"):
        return str(row.status)
    a = t.annotations.c
    if row.upload_id is not None:
        owner = a.upload_id == row.upload_id
    elif row.email_id is not None:
        owner = a.email_id == row.email_id
    else:
        return str(row.status)
    pending = await conn.execute(sa.select(a.id).where(owner, a.status == IMPORTING).limit(1))
    return "running" if pending.first() is not None else "succeeded"


def task_result_url(urls: Urls, row: Any) -> str | None:
    if row.type == "email_imported" and row.email_id is not None:
        return urls.to("emails", row.email_id)
    if row.upload_id is not None:
        return urls.to("uploads", row.upload_id)
    return urls.of("emails", row.email_id)


def render_task(urls: Urls, row: Any, status: str) -> dict[str, Any]:
    content = dict(row.content) if isinstance(row.content, dict) else {}
    if row.upload_id is not None:
        content.setdefault("upload", urls.to("uploads", row.upload_id))
    body: dict[str, Any] = {
        "id": row.id,
        "url": urls.to("tasks", row.id),
        "type": row.type,
        "status": status,
        "expires_at": iso(row.expires_at),
        "detail": row.detail if status == "failed" else None,
        "content": content,
        "result_url": task_result_url(urls, row) if status == "succeeded" else None,
    }
    if status == "failed":
        body["code"] = "error"
    return body
