"""REST endpoints for schemas (`/schemas`, `/schemas/validate`).

Everyone in the organization reads schemas (annotating needs them); admins and managers write.
`content` is checked by `postroom.schema_content` on every write. A schema still used by a queue
or by annotations cannot be deleted (409): annotations keep pointing at their schema.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.clock import iso, utcnow
from postroom.db import tables as t
from postroom.errors import BadRequest, Conflict, NotFound
from postroom.organization import insert_returning_id
from postroom.permissions import Actor
from postroom.queue_templates import find_template, template_names
from postroom.schema_content import validate_schema_content
from postroom.web.bodies import path_id, read_object
from postroom.web.keys import actor, services
from postroom.web.listing import Filter, apply_filters, apply_ordering, envelope, paginate
from postroom.web.related import visible_queue_ids_by
from postroom.web.resource_models import SchemaBody, SchemaFromTemplateBody, parse_body
from postroom.web.urls import Urls

routes = web.RouteTableDef()

s = t.schemas


def render_schema(urls: Urls, row: Any, queue_ids: list[int]) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "url": urls.to("schemas", row.id),
        "queues": urls.many("queues", queue_ids),
        "content": row.content or [],
        "metadata": row.metadata or {},
        "modified_by": urls.of("users", row.modified_by_id),
        "modified_at": iso(row.modified_at),
    }


async def _render_rows(
    conn: AsyncConnection, urls: Urls, who: Actor, rows: list[Any]
) -> list[dict[str, Any]]:
    queues = await visible_queue_ids_by(conn, who, t.queues.c.schema_id, [r.id for r in rows])
    return [render_schema(urls, row, queues[row.id]) for row in rows]


def _used_by_queues(raw: str) -> sa.ColumnElement[bool]:
    ids = Filter("queue", t.queues.c.id).clause(raw)
    return s.c.id.in_(sa.select(t.queues.c.schema_id).where(ids))


FILTERS = (
    Filter("id", s.c.id),
    Filter("name", s.c.name, "str"),
    Filter("queue", kind="custom", build=_used_by_queues),
)
ORDERING = {"id": s.c.id, "name": s.c.name, "modified_at": s.c.modified_at}


@routes.get("/api/v1/schemas")
async def list_schemas(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    stmt = sa.select(s).where(s.c.organization_id == who.organization_id)
    stmt = apply_filters(stmt, request.query, FILTERS)
    stmt = apply_ordering(stmt, request.query.get("ordering"), ORDERING, [s.c.id])
    async with svc.db.reading() as conn:
        rows, pagination = await paginate(conn, request, svc.urls.base, stmt)
        results = await _render_rows(conn, svc.urls, who, rows)
    return web.json_response(envelope(pagination, results))


async def _schema_row(conn: AsyncConnection, who: Actor, schema_id: int) -> Any:
    row = (
        await conn.execute(
            sa.select(s).where(s.c.id == schema_id, s.c.organization_id == who.organization_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"Schema {schema_id} not found.")
    return row


async def _schema_json(conn: AsyncConnection, urls: Urls, who: Actor, schema_id: int) -> Any:
    row = await _schema_row(conn, who, schema_id)
    return (await _render_rows(conn, urls, who, [row]))[0]


@routes.get("/api/v1/schemas/{id:\\d+}")
async def retrieve_schema(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    async with svc.db.reading() as conn:
        return web.json_response(await _schema_json(conn, svc.urls, who, path_id(request)))


@routes.post("/api/v1/schemas/validate")
async def validate_schema(request: web.Request) -> web.Response:
    """Check a content without storing it: 200 {} when valid, 400 naming the bad node otherwise."""
    _body, sent = parse_body(SchemaBody, await read_object(request), required=("content",))
    validate_schema_content(sent["content"])
    return web.json_response({})


async def _insert_schema(
    request: web.Request, name: str, content: list[Any], metadata: dict[str, Any]
) -> web.Response:
    svc, who = services(request), actor(request)
    async with svc.db.transaction() as conn:
        schema_id = await insert_returning_id(
            conn,
            s,
            organization_id=who.organization_id,
            name=name,
            content=content,
            metadata=metadata,
            modified_by_id=who.user_id,
            modified_at=utcnow(),
        )
        body = await _schema_json(conn, svc.urls, who, schema_id)
    return web.json_response(body, status=201)


@routes.post("/api/v1/schemas")
async def create_schema(request: web.Request) -> web.Response:
    actor(request).require_manager()
    _body, sent = parse_body(SchemaBody, await read_object(request), required=("name",))
    validate_schema_content(sent.get("content", []))
    return await _insert_schema(
        request, sent["name"], sent.get("content", []), sent.get("metadata", {})
    )


@routes.post("/api/v1/schemas/from_template")
async def create_schema_from_template(request: web.Request) -> web.Response:
    """A new schema with the content of one of the shipped queue templates."""
    actor(request).require_manager()
    body, _sent = parse_body(
        SchemaFromTemplateBody, await read_object(request), required=("name", "template_name")
    )
    template = find_template(body.template_name)
    if template is None:
        raise BadRequest(
            f"template_name: unknown template {body.template_name!r} "
            f"(available: {', '.join(template_names())})."
        )
    return await _insert_schema(request, body.name, template.schema_content, body.metadata)


async def _update_schema(request: web.Request, *, partial: bool) -> web.Response:
    svc, who = services(request), actor(request)
    schema_id = path_id(request)
    async with svc.db.reading() as conn:
        await _schema_row(conn, who, schema_id)
    who.require_manager()
    _body, sent = parse_body(
        SchemaBody, await read_object(request), required=("name", "content"), partial=partial
    )
    if "content" in sent:
        validate_schema_content(sent["content"])
    async with svc.db.transaction() as conn:
        await _schema_row(conn, who, schema_id)
        await conn.execute(
            s.update()
            .where(s.c.id == schema_id)
            .values(**sent, modified_by_id=who.user_id, modified_at=utcnow())
        )
        body = await _schema_json(conn, svc.urls, who, schema_id)
    return web.json_response(body)


@routes.patch("/api/v1/schemas/{id:\\d+}")
async def patch_schema(request: web.Request) -> web.Response:
    return await _update_schema(request, partial=True)


@routes.put("/api/v1/schemas/{id:\\d+}")
async def put_schema(request: web.Request) -> web.Response:
    return await _update_schema(request, partial=False)


@routes.delete("/api/v1/schemas/{id:\\d+}")
async def delete_schema(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    schema_id = path_id(request)
    async with svc.db.reading() as conn:
        await _schema_row(conn, who, schema_id)
    who.require_manager()
    async with svc.db.transaction() as conn:
        await _schema_row(conn, who, schema_id)
        for table, what in ((t.queues, "queues"), (t.annotations, "annotations")):
            used = await conn.execute(
                sa.select(sa.func.count()).select_from(table).where(table.c.schema_id == schema_id)
            )
            count = used.scalar_one()
            if count:
                raise Conflict(
                    f"Schema {schema_id} is used by {count} {what}; it cannot be deleted."
                )
        await conn.execute(s.delete().where(s.c.id == schema_id))
    return web.Response(status=204)
