"""REST endpoints for queues: list, create, retrieve, PUT/PATCH, DELETE (scheduled), from_template,
duplicate and related_objects_counts.

The queue's upload, export, next and suggested_recipients routes live with their own features
(`web.uploads`, `web.export`, `web.review`, `web.emails`). Admins and managers see and change
every queue of their organization; annotators and viewers see only the queues they are assigned
to (others answer 404) and change none (403).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.clock import utcnow
from postroom.db import tables as t
from postroom.errors import BadRequest, ConflictStatus, NotFound
from postroom.organization import insert_returning_id
from postroom.permissions import Actor, visible_queues_clause
from postroom.queue_templates import find_template, template_names
from postroom.web import queue_models as qm
from postroom.web.bodies import read_object, validate
from postroom.web.keys import actor, services
from postroom.web.listing import Filter, apply_filters, apply_ordering, envelope, paginate
from postroom.web.queue_changes import QueueChange, check_engines, default_workspace
from postroom.web.queue_copies import duplicate_queue, queue_from_template
from postroom.web.urls import Urls

routes = web.RouteTableDef()

COLLECTION = "/api/v1/queues"
ONE = COLLECTION + r"/{id:\d+}"
DEFAULT_DELETE_AFTER = timedelta(hours=24)

q = t.queues


def _linked_to(table: sa.Table, column: str) -> Any:
    def build(raw: str) -> sa.ColumnElement[bool]:
        ids = Filter(column, kind="ids", column=table.c[column]).clause(raw)
        return q.c.id.in_(sa.select(table.c.queue_id).where(ids))

    return build


def _url_reference(column: sa.Column[Any], collection: str) -> Any:
    """Filter a column holding a URL we do not own (connector, engines) by the id it ends with."""

    def build(raw: str) -> sa.ColumnElement[bool]:
        ids = [part.strip() for part in raw.split(",") if part.strip()]
        if not all(i.isdigit() for i in ids):
            raise BadRequest(f"{column.name}: expected ids separated by commas, got {raw!r}.")
        return sa.or_(*(column.like(f"%/{collection}/{i}") for i in ids))

    return build


def _deleting(raw: str) -> sa.ColumnElement[bool]:
    lowered = raw.strip().lower()
    if lowered not in ("true", "false", "1", "0"):
        raise BadRequest(f"deleting: expected true or false, got {raw!r}.")
    being_deleted = q.c.delete_after.is_not(None)
    return being_deleted if lowered in ("true", "1") else sa.not_(being_deleted)


FILTERS = (
    Filter("id", q.c.id),
    Filter("name", q.c.name, kind="str"),
    Filter("workspace", q.c.workspace_id),
    Filter("inbox", q.c.inbox_id),
    Filter("schema", q.c.schema_id),
    Filter("locale", q.c.locale, kind="strs"),
    Filter("status", q.c.status, kind="strs"),
    Filter("deleting", kind="custom", build=_deleting),
    Filter("users", kind="custom", build=_linked_to(t.queue_users, "user_id")),
    Filter("hooks", kind="custom", build=_linked_to(t.queue_hooks, "hook_id")),
    Filter("webhooks", kind="custom", build=_linked_to(t.queue_hooks, "hook_id")),
    Filter("connector", kind="custom", build=_url_reference(q.c.connector, "connectors")),
    Filter(
        "generic_engine",
        kind="custom",
        build=_url_reference(q.c.generic_engine, "generic_engines"),
    ),
    Filter(
        "dedicated_engine",
        kind="custom",
        build=_url_reference(q.c.dedicated_engine, "dedicated_engines"),
    ),
)
# The reference orders by `webhooks` too: by each queue's lowest hook id.
_FIRST_HOOK = (
    sa.select(sa.func.min(t.queue_hooks.c.hook_id))
    .where(t.queue_hooks.c.queue_id == q.c.id)
    .scalar_subquery()
)
ORDERING = {
    "id": q.c.id,
    "webhooks": _FIRST_HOOK,
    "hooks": _FIRST_HOOK,
    "name": q.c.name,
    "workspace": q.c.workspace_id,
    "connector": q.c.connector,
    "schema": q.c.schema_id,
    "inbox": q.c.inbox_id,
    "locale": q.c.locale,
    "status": q.c.status,
    "modified_at": q.c.modified_at,
}


def _visible(who: Actor) -> sa.Select[Any]:
    return sa.select(q).where(
        q.c.organization_id == who.organization_id, visible_queues_clause(who, q.c.id)
    )


async def visible_queue(conn: AsyncConnection, who: Actor, queue_id: int) -> Any:
    """The queue row if the actor may see it; 404 otherwise (invisible and missing look alike)."""
    row = (await conn.execute(_visible(who).where(q.c.id == queue_id))).first()
    if row is None:
        raise NotFound(f"Queue {queue_id} not found.")
    return row


async def queue_json(conn: AsyncConnection, urls: Urls, queue_id: int) -> dict[str, Any]:
    row = (await conn.execute(sa.select(q).where(q.c.id == queue_id))).one()
    return (await qm.render_queues(conn, urls, [row]))[0]


def _queue_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if len(raw) > 18:
        raise NotFound("Queue not found.")
    return int(raw)


# ---------------------------------------------------------------- reading


@routes.get(COLLECTION)
async def list_queues(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    stmt = apply_filters(_visible(who), request.query, FILTERS)
    stmt = apply_ordering(stmt, request.query.get("ordering"), ORDERING, [q.c.id])
    # Ties (same name, same workspace…) broken by id, so pages never overlap or skip a queue.
    stmt = stmt.order_by(q.c.id)
    async with svc.db.reading() as conn:
        rows, pagination = await paginate(conn, request, svc.urls.base, stmt)
        results = await qm.render_queues(conn, svc.urls, rows)
    return web.json_response(envelope(pagination, results))


@routes.get(ONE)
async def retrieve_queue(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    async with svc.db.reading() as conn:
        row = await visible_queue(conn, who, _queue_id(request))
        return web.json_response((await qm.render_queues(conn, svc.urls, [row]))[0])


@routes.get(ONE + "/related_objects_counts")
async def related_objects_counts(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    a, d, e = t.annotations, t.documents, t.emails
    async with svc.db.reading() as conn:
        row = await visible_queue(conn, who, _queue_id(request))
        kept = sa.and_(a.c.queue_id == row.id, a.c.status != "purged")
        annotations = await conn.scalar(sa.select(sa.func.count()).where(kept))
        documents = await conn.scalar(
            sa.select(sa.func.count(sa.distinct(d.c.id))).select_from(
                d.join(a, sa.and_(a.c.document_id == d.c.id, kept))
            )
        )
        emails = await conn.scalar(sa.select(sa.func.count()).where(e.c.queue_id == row.id))
    return web.json_response(
        {
            "emails": int(emails or 0),
            "annotations": int(annotations or 0),
            "documents": int(documents or 0),
            "trained_dedicated_engines": 0,
        }
    )


# ---------------------------------------------------------------- writing


@routes.post(COLLECTION)
async def create_queue(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    who.require_manager()
    body = validate(qm.QueueBody, await read_object(request))
    missing = [f for f in ("name", "schema_") if getattr(body, f) is None]
    if missing:
        names = ", ".join(f.rstrip("_") for f in missing)
        raise BadRequest(f"{names}: This field is required.")
    change = QueueChange(body, svc.urls)
    values = change.values
    check_engines(values.get("generic_engine"), values.get("dedicated_engine"))
    now = utcnow()
    async with svc.db.transaction() as conn:
        await change.check(conn, who.organization_id, None)
        if "workspace_id" not in values:
            # Omitted (not null): place the queue where the Rossum UI would show it.
            values["workspace_id"] = await default_workspace(conn, who.organization_id)
        queue_id = await insert_returning_id(
            conn,
            q,
            organization_id=who.organization_id,
            modified_by_id=who.user_id,
            modified_at=now,
            created_at=now,
            **values,
        )
        await change.save_links(conn, queue_id)
        result = await queue_json(conn, svc.urls, queue_id)
    return web.json_response(result, status=201)


async def _update_queue(request: web.Request, *, partial: bool) -> web.Response:
    svc, who = services(request), actor(request)
    queue_id = _queue_id(request)
    async with svc.db.reading() as conn:
        await visible_queue(conn, who, queue_id)
    who.require_manager()
    body = validate(qm.QueueBody, await read_object(request))
    if not partial:
        missing = [f for f in ("name", "schema_") if f not in body.model_fields_set]
        if missing:
            names = ", ".join(f.rstrip("_") for f in missing)
            raise BadRequest(f"{names}: This field is required.")
    change = QueueChange(body, svc.urls)
    async with svc.db.transaction() as conn:
        row = await visible_queue(conn, who, queue_id)
        merged = {**row._mapping, **change.values}
        check_engines(merged["generic_engine"], merged["dedicated_engine"])
        await change.check(conn, who.organization_id, queue_id)
        await conn.execute(
            q.update()
            .where(q.c.id == queue_id)
            .values(modified_by_id=who.user_id, modified_at=utcnow(), **change.values)
        )
        await change.save_links(conn, queue_id)
        result = await queue_json(conn, svc.urls, queue_id)
    return web.json_response(result)


@routes.patch(ONE)
async def patch_queue(request: web.Request) -> web.Response:
    return await _update_queue(request, partial=True)


@routes.put(ONE)
async def put_queue(request: web.Request) -> web.Response:
    return await _update_queue(request, partial=False)


def _delete_delay(request: web.Request) -> timedelta:
    raw = request.query.get("delete_after", "")
    if raw == "":
        return DEFAULT_DELETE_AFTER
    delay = qm.parse_duration(raw)
    if delay is None:
        raise BadRequest(
            f"delete_after: expected a duration as HH:MM:SS (e.g. 24:00:00), got {raw!r}."
        )
    return delay


@routes.delete(ONE)
async def delete_queue(request: web.Request) -> web.Response:
    """Schedule the deletion: the background duty removes the queue after `delete_after`."""
    svc, who = services(request), actor(request)
    queue_id = _queue_id(request)
    async with svc.db.reading() as conn:
        await visible_queue(conn, who, queue_id)
    who.require_manager()
    delay = _delete_delay(request)
    now = utcnow()
    async with svc.db.transaction() as conn:
        row = await visible_queue(conn, who, queue_id)
        if row.status != "active":
            raise ConflictStatus(f"Queue {queue_id} is already being deleted ({row.status}).")
        # The reference: deletion unlinks the workspace at once, and import stops at once.
        changed = await conn.execute(
            q.update()
            .where(q.c.id == queue_id, q.c.status == "active")
            .values(
                status="deletion_requested",
                delete_after=now + delay,
                workspace_id=None,
                modified_by_id=who.user_id,
                modified_at=now,
            )
        )
        if changed.rowcount != 1:
            # A concurrent DELETE (PostgreSQL) marked it between our read and our update.
            raise ConflictStatus(f"Queue {queue_id} is already being deleted.")
    return web.Response(status=202)


# ---------------------------------------------------------------- from template, duplicate


@routes.post(COLLECTION + "/from_template")
async def create_from_template(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    who.require_manager()
    body = validate(qm.FromTemplateBody, await read_object(request))
    template = find_template(body.template_name)
    if template is None:
        raise BadRequest(
            f"template_name: unknown template {body.template_name!r} "
            f"(available: {', '.join(template_names())})."
        )
    workspace_id = svc.urls.optional_id_from(body.workspace, "workspaces", "workspace")
    async with svc.db.transaction() as conn:
        queue_id = await queue_from_template(svc, conn, who, body, template, workspace_id)
        result = await queue_json(conn, svc.urls, queue_id)
    return web.json_response(result, status=201)


@routes.post(ONE + "/duplicate")
async def duplicate(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    queue_id = _queue_id(request)
    async with svc.db.reading() as conn:
        await visible_queue(conn, who, queue_id)
    who.require_manager()
    flags = validate(qm.DuplicateBody, await read_object(request))
    async with svc.db.transaction() as conn:
        source = await visible_queue(conn, who, queue_id)
        new_id = await duplicate_queue(svc, conn, who, source, flags)
        result = await queue_json(conn, svc.urls, new_id)
    return web.json_response(result, status=201)
