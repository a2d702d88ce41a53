"""REST endpoints for annotations: list, retrieve, PATCH (metadata, status) and the content tree.

An annotation is visible when its queue is (annotators and viewers: assigned queues only) and it
belongs to the caller's organization; anything else answers 404. The JSON carries every field the
reference and the `rossum-api` SDK expect (lists never null, `automated` a bool); `pages` stays
empty (Postroom renders no page images) and `page_count` tells how many pages the file has.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom import lifecycle
from postroom.clock import iso, utcnow
from postroom.db import tables as t
from postroom.errors import BadRequest, NotFound
from postroom.permissions import Actor, visible_queues_clause
from postroom.services import Services
from postroom.web.annotation_filters import ANNOTATION_FILTERS
from postroom.web.annotation_sideloads import sideloads
from postroom.web.bodies import path_id, read_object
from postroom.web.keys import actor, services
from postroom.web.listing import apply_filters, apply_ordering, envelope, paginate
from postroom.web.urls import Urls

routes = web.RouteTableDef()

a = t.annotations
_TIMESTAMPS = (
    "arrived_at",
    "created_at",
    "modified_at",
    "assigned_at",
    "confirmed_at",
    "exported_at",
    "export_failed_at",
    "deleted_at",
    "purged_at",
    "rejected_at",
)
_USERS = ("confirmed_by", "deleted_by", "exported_by", "purged_by", "rejected_by", "modified_by")


def _of(table: sa.Table, column: str, key: sa.ColumnElement[Any]) -> sa.ScalarSelect[Any]:
    return sa.select(table.c[column]).where(table.c.id == key).scalar_subquery()


ORDERING: dict[str, Any] = {
    "id": a.c.id,
    "document": a.c.document_id,
    "document__arrived_at": _of(t.documents, "arrived_at", a.c.document_id),
    "document__original_file_name": _of(t.documents, "original_file_name", a.c.document_id),
    "queue": a.c.queue_id,
    "status": a.c.status,
    "modifier": a.c.modifier_id,
    "modifier__username": _of(t.users, "username", a.c.modifier_id),
    "creator": a.c.creator_id,
    "creator__username": _of(t.users, "username", a.c.creator_id),
    **{name: a.c[name] for name in _TIMESTAMPS},
    **{name: a.c[f"{name}_id"] for name in _USERS},
    **{f"{name}__username": _of(t.users, "username", a.c[f"{name}_id"]) for name in _USERS},
}


def render_annotation(urls: Urls, row: Any) -> dict[str, Any]:
    """The Rossum annotation object of one `annotations` row."""
    url = urls.to("annotations", row.id)
    body: dict[str, Any] = {
        "id": row.id,
        "url": url,
        "status": row.status,
        "document": urls.to("documents", row.document_id),
        "queue": urls.to("queues", row.queue_id),
        "schema": urls.to("schemas", row.schema_id),
        "relations": [],
        "pages": [],
        "page_count": row.page_count,
        "creator": urls.of("users", row.creator_id),
        "modifier": urls.of("users", row.modifier_id),
        "rir_poll_id": None,
        "messages": row.messages or [],
        "content": url + "/content",
        "suggested_edit": None,
        "time_spent": 0,
        "metadata": row.metadata or {},
        "automated": bool(row.automated),
        "related_emails": urls.many("emails", [row.email_id] if row.email_id else []),
        "email": urls.of("emails", row.email_id),
        "automation_blocker": None,
        "email_thread": None,
        "has_email_thread_with_replies": False,
        "has_email_thread_with_new_replies": False,
        "organization": urls.to("organizations", row.organization_id),
        "prediction": None,
        "assignees": [],
        "labels": [],
        "restricted_access": False,
        "automatically_rejected": False,
        "training_enabled": True,
        "einvoice": False,
    }
    for name in _TIMESTAMPS:
        body[name] = iso(getattr(row, name))
    for name in _USERS:
        body[name] = urls.of("users", getattr(row, f"{name}_id"))
    return body


def _selected_fields(request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    """`fields=` keeps only the named attributes, `fields!=` drops them (the reference)."""
    keep = request.query.get("fields", "")
    drop = request.query.get("fields!", "")
    if keep:
        wanted = {f.strip() for f in keep.split(",")}
        body = {k: v for k, v in body.items() if k in wanted}
    if drop:
        unwanted = {f.strip() for f in drop.split(",")}
        body = {k: v for k, v in body.items() if k not in unwanted}
    return body


# Every column but the content tree, which only the content endpoint and sideload read.
_FIELDS = [column for column in a.c if column.name != "content"]


def visible(who: Actor, *columns: Any) -> sa.Select[Any]:
    """Annotations the actor may see (organization and queue visibility)."""
    return sa.select(*(columns or _FIELDS)).where(
        a.c.organization_id == who.organization_id, visible_queues_clause(who, a.c.queue_id)
    )


async def load_visible(conn: AsyncConnection, who: Actor, annotation_id: int, *columns: Any) -> Any:
    """The annotation row, or 404 when it does not exist or the actor may not see it."""
    row = (await conn.execute(visible(who, *columns).where(a.c.id == annotation_id))).first()
    if row is None:
        raise NotFound(f"Annotation {annotation_id} not found.")
    return row


@routes.get("/api/v1/annotations")
async def list_annotations(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    stmt = apply_filters(visible(who), request.query, ANNOTATION_FILTERS)
    stmt = apply_ordering(stmt, request.query.get("ordering"), ORDERING, [a.c.id])
    stmt = stmt.order_by(a.c.id)  # a stable page order among equal sort keys
    async with svc.db.reading() as conn:
        rows, pagination = await paginate(conn, request, svc.settings.base_url, stmt)
        related = await sideloads(conn, svc.urls, request.query, rows)
    results = [_selected_fields(request, render_annotation(svc.urls, row)) for row in rows]
    return web.json_response({**envelope(pagination, results), **related})


@routes.get("/api/v1/annotations/{id}")
async def retrieve_annotation(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    async with svc.db.reading() as conn:
        row = await load_visible(conn, who, path_id(request))
    return web.json_response(_selected_fields(request, render_annotation(svc.urls, row)))


@routes.get("/api/v1/annotations/{id}/content")
async def annotation_content(request: web.Request) -> web.Response:
    """The content tree (empty while the annotation is still importing)."""
    svc, who = services(request), actor(request)
    async with svc.db.reading() as conn:
        row = await load_visible(conn, who, path_id(request), a.c.content)
    return web.json_response({"content": row.content or []})


@routes.patch("/api/v1/annotations/{id}")
async def patch_annotation(request: web.Request) -> web.Response:
    """Change `metadata` and/or `status`; read-only and unknown keys are ignored (clients send
    back whole objects), as the reference does."""
    svc, who = services(request), actor(request)
    annotation_id = path_id(request)
    body = await read_object(request)
    async with svc.db.reading() as conn:
        await load_visible(conn, who, annotation_id)  # 404 before 403
    who.require_annotator()
    changes = _metadata_change(svc, body)
    async with svc.db.transaction() as conn:
        await load_visible(conn, who, annotation_id)
        if "status" in body:
            await change_status(conn, svc, who, annotation_id, body["status"])
        if changes:
            changes.update(modified_at=utcnow(), modified_by_id=who.user_id)
            await conn.execute(a.update().where(a.c.id == annotation_id).values(**changes))
        row = await load_visible(conn, who, annotation_id)
    if "status" in body:
        svc.jobs_available.set()  # a move to `exporting` enqueued an export job
    return web.json_response(render_annotation(svc.urls, row))


def _metadata_change(svc: Services, body: dict[str, Any]) -> dict[str, Any]:
    if "metadata" not in body:
        return {}
    metadata = body["metadata"]
    if not isinstance(metadata, dict):
        raise BadRequest("metadata: expected a JSON object.")
    limit = svc.settings.limits.max_metadata_bytes
    if len(json.dumps(metadata, ensure_ascii=False).encode()) > limit:
        raise BadRequest(f"metadata: larger than {limit} bytes of JSON.")
    return {"metadata": metadata}


async def change_status(
    conn: AsyncConnection, svc: Services, who: Actor, annotation_id: int, status: Any
) -> None:
    """PATCH `status`: the lifecycle's guarded move (409 when the transition is not allowed)."""
    from postroom.web.review import change_status as review_change_status

    if not isinstance(status, str) or status not in lifecycle.PATCH_TARGETS:
        allowed = ", ".join(sorted(lifecycle.PATCH_TARGETS))
        raise BadRequest(f"status: expected one of {allowed}, got {status!r}.")
    # Same status (a client sending the whole object back): no change; reviewing by another
    # user: 409; exporting: the confirmation is recorded as by the confirm action.
    await review_change_status(conn, who, annotation_id, status)
