"""REST endpoints for documents: list, retrieve, original content, create (no annotation), PATCH
metadata, DELETE.

A document is visible through the queue of its upload or e-mail; one created by `POST /documents`
belongs to no queue and is visible to its creator and to admins and managers. `content` streams
the exact stored bytes with the sniffed type and the UTF-8 file name (RFC 6266 / 5987).
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom import metrics
from postroom.clock import utcnow
from postroom.db import tables as t
from postroom.errors import BadRequest, NotFound
from postroom.intake.names import content_disposition_header
from postroom.intake.receive_http import (
    BodyRules,
    discard_quietly,
    json_object_field,
    receive_body,
    store_files,
)
from postroom.permissions import Actor, visible_queues_clause
from postroom.services import Services
from postroom.web.auth import basic_auth_allowed
from postroom.web.blob_responses import blob_response
from postroom.web.bodies import path_id, read_object
from postroom.web.intake_render import document_annotations, render_document
from postroom.web.keys import actor, services
from postroom.web.listing import Filter, apply_filters, apply_ordering, envelope, paginate
from postroom.web.uploads import closes_when_refused

routes = web.RouteTableDef()

MAX_PARENT_BYTES = 2048
D = t.documents.c
# Fields a client may send back unchanged in a PATCH (Rossum ignores read-only fields).
READ_ONLY_FIELDS = frozenset(
    (
        "id",
        "url",
        "s3_name",
        "parent",
        "email",
        "annotations",
        "mime_type",
        "creator",
        "created_at",
        "arrived_at",
        "original_file_name",
        "content",
        "attachment_status",
    )
)


def visible_documents(who: Actor) -> sa.ColumnElement[bool]:
    u, e = t.uploads.c, t.emails.c
    upload_queue = sa.select(u.queue_id).where(u.id == D.upload_id).scalar_subquery()
    email_queue = sa.select(e.queue_id).where(e.id == D.email_id).scalar_subquery()
    if who.sees_all_queues:
        return D.organization_id == who.organization_id
    return sa.and_(
        D.organization_id == who.organization_id,
        sa.or_(
            sa.and_(D.upload_id.is_not(None), visible_queues_clause(who, upload_queue)),
            sa.and_(
                D.upload_id.is_(None),
                D.email_id.is_not(None),
                visible_queues_clause(who, email_queue),
            ),
            sa.and_(D.upload_id.is_(None), D.email_id.is_(None), D.creator_id == who.user_id),
        ),
    )


async def load_document(conn: AsyncConnection, who: Actor, document_id: int) -> Any:
    row = (
        await conn.execute(
            sa.select(t.documents).where(D.id == document_id, visible_documents(who))
        )
    ).first()
    if row is None:
        raise NotFound(f"Document {document_id} not found.")
    return row


async def _render(conn: AsyncConnection, svc: Services, rows: list[Any]) -> list[dict[str, Any]]:
    annotations = await document_annotations(conn, [row.id for row in rows])
    return [render_document(svc.urls, row, annotations.get(row.id, [])) for row in rows]


DOCUMENT_FILTERS = (
    Filter("id", D.id),
    Filter("email", D.email_id),
    Filter("creator", D.creator_id),
    Filter("parent", D.parent_id),
    Filter("upload", D.upload_id),
    Filter("original_file_name", D.original_file_name, "str"),
    Filter("attachment_status", D.attachment_status, "strs"),
    Filter("mime_type", D.mime_type, "strs"),
    Filter("arrived_at_before", D.arrived_at, "before"),
    Filter("arrived_at_after", D.arrived_at, "after"),
    Filter("created_at_before", D.created_at, "before"),
    Filter("created_at_after", D.created_at, "after"),
)
DOCUMENT_ORDERING = {
    "id": D.id,
    "arrived_at": D.arrived_at,
    "created_at": D.created_at,
    "original_file_name": D.original_file_name,
    "mime_type": D.mime_type,
    "attachment_status": D.attachment_status,
}


@routes.get("/api/v1/documents")
async def list_documents(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    stmt = sa.select(t.documents).where(visible_documents(who))
    stmt = apply_filters(stmt, request.query, DOCUMENT_FILTERS)
    stmt = apply_ordering(stmt, request.query.get("ordering"), DOCUMENT_ORDERING, [D.id])
    async with svc.db.reading() as conn:
        rows, pagination = await paginate(conn, request, svc.urls.base, stmt)
        results = await _render(conn, svc, rows)
    return web.json_response(envelope(pagination, results))


@routes.get("/api/v1/documents/{id}")
async def retrieve_document(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    async with svc.db.reading() as conn:
        row = await load_document(conn, who, path_id(request))
        (result,) = await _render(conn, svc, [row])
    return web.json_response(result)


@routes.get("/api/v1/documents/{id}/content")
async def document_content(request: web.Request) -> web.StreamResponse:
    """The original bytes, sent from the file in pieces (sendfile), never read whole."""
    svc, who = services(request), actor(request)
    async with svc.db.reading() as conn:
        row = await load_document(conn, who, path_id(request))
    headers = {
        "Content-Type": row.mime_type,
        "Content-Disposition": content_disposition_header(row.original_file_name),
        # The bytes never change (content-addressed); the file name does not leak into caches.
        "Cache-Control": "private, max-age=3600",
    }
    return await blob_response(svc, row.s3_name, f"document {row.id}", headers)


def _document_rules(svc: Services) -> BodyRules:
    limits = svc.settings.limits
    return BodyRules(
        max_body_bytes=limits.max_upload_bytes,
        field_limits={"metadata": limits.max_metadata_bytes, "parent": MAX_PARENT_BYTES},
        idle_timeout_s=limits.upload_idle_timeout_s,
    )


async def _parent_id(
    conn: AsyncConnection, svc: Services, who: Actor, raw: str | None
) -> int | None:
    if raw is None or not raw.strip():
        return None
    parent_id = svc.urls.id_from(raw.strip(), "documents", "parent")
    visible = await conn.execute(sa.select(D.id).where(D.id == parent_id, visible_documents(who)))
    if visible.first() is None:
        raise BadRequest(f"parent: document {parent_id} not found.")
    return parent_id


@routes.post("/api/v1/documents")
@basic_auth_allowed
@closes_when_refused
async def create_document(request: web.Request) -> web.StreamResponse:
    """One document from one file (multipart `content` or raw body); no upload, no annotation."""
    svc, who = services(request), actor(request)
    who.require_importer()
    body = await receive_body(request, svc.blobs, _document_rules(svc))
    try:
        metadata = json_object_field(body, "metadata")
        if len(body.files) != 1:
            raise BadRequest(
                "content: exactly one file is required (a multipart part named content, "
                "or the request body)."
            )
        async with svc.db.reading() as conn:
            parent_id = await _parent_id(conn, svc, who, body.fields.get("parent"))
        (stored,) = await store_files(body, svc.blobs)
    except BaseException:
        await discard_quietly(body)
        raise
    now = utcnow()
    async with svc.db.transaction() as conn:
        result = await conn.execute(
            t.documents.insert()
            .values(
                organization_id=who.organization_id,
                creator_id=who.user_id,
                parent_id=parent_id,
                s3_name=stored.blob_key,
                sha256=stored.blob_key,
                size=stored.size,
                mime_type=stored.mime_type,
                original_file_name=stored.original_file_name,
                metadata=metadata,
                arrived_at=now,
                created_at=now,
            )
            .returning(t.documents)
        )
        row = result.one()
    metrics.UPLOADED_FILES.labels(channel="http").inc()
    return web.json_response(render_document(svc.urls, row, []), status=201)


def _metadata_from_patch(svc: Services, data: dict[str, Any]) -> dict[str, Any] | None:
    unknown = sorted(set(data) - READ_ONLY_FIELDS - {"metadata"})
    if unknown:
        raise BadRequest(f"{unknown[0]}: unknown field (only metadata can be changed).")
    if "metadata" not in data:
        return None
    metadata = data["metadata"]
    if not isinstance(metadata, dict):
        raise BadRequest("metadata: expected a JSON object.")
    limit = svc.settings.limits.max_metadata_bytes
    if len(json.dumps(metadata, ensure_ascii=False).encode()) > limit:
        raise BadRequest(f"metadata: larger than {limit} bytes.")
    return metadata


@routes.patch("/api/v1/documents/{id}")
async def update_document(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    document_id = path_id(request)
    data = await read_object(request)
    async with svc.db.transaction() as conn:
        await load_document(conn, who, document_id)
        who.require_annotator()
        metadata = _metadata_from_patch(svc, data)
        if metadata is not None:
            await conn.execute(
                t.documents.update().where(D.id == document_id).values(metadata=metadata)
            )
        row = await load_document(conn, who, document_id)
        (result,) = await _render(conn, svc, [row])
    return web.json_response(result)


@routes.delete("/api/v1/documents/{id}")
async def delete_document(request: web.Request) -> web.Response:
    """Delete the document and its annotations; its bytes go when no other document shares them."""
    svc, who = services(request), actor(request)
    document_id = path_id(request)
    async with svc.db.transaction() as conn:
        row = await load_document(conn, who, document_id)
        who.require_annotator()
        # Children keep existing without their parent (the reference's parent is informative).
        await conn.execute(
            t.documents.update().where(D.parent_id == document_id).values(parent_id=None)
        )
        await conn.execute(t.documents.delete().where(D.id == document_id))
        shared = await conn.execute(sa.select(D.id).where(D.sha256 == row.sha256).limit(1))
        still_used = shared.first() is not None
    if row.s3_name and not still_used:
        await svc.blobs.delete(row.s3_name)
    return web.Response(status=204)
