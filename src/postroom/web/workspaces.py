"""REST endpoints for workspaces (`/workspaces`), the containers of queues.

Everyone in the organization reads workspaces; `queues` lists only the queues the caller may
see. Admins and managers write. `autopilot` is read-only and always false (Postroom has no
autopilot). A workspace that still holds queues cannot be deleted (409), as in the reference.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.clock import utcnow
from postroom.db import tables as t
from postroom.errors import BadRequest, Conflict, NotFound
from postroom.organization import insert_returning_id
from postroom.permissions import Actor
from postroom.web.bodies import path_id, read_object
from postroom.web.keys import actor, services
from postroom.web.listing import Filter, apply_filters, apply_ordering, envelope, paginate
from postroom.web.related import visible_queue_ids_by
from postroom.web.resource_models import WorkspaceBody, parse_body
from postroom.web.urls import Urls

routes = web.RouteTableDef()

w = t.workspaces


def render_workspace(urls: Urls, row: Any, queue_ids: list[int]) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "url": urls.to("workspaces", row.id),
        "autopilot": False,
        "organization": urls.to("organizations", row.organization_id),
        "queues": urls.many("queues", queue_ids),
        "metadata": row.metadata or {},
    }


async def _render_rows(
    conn: AsyncConnection, urls: Urls, who: Actor, rows: list[Any]
) -> list[dict[str, Any]]:
    queues = await visible_queue_ids_by(conn, who, t.queues.c.workspace_id, [r.id for r in rows])
    return [render_workspace(urls, row, queues[row.id]) for row in rows]


FILTERS = (
    Filter("id", w.c.id),
    Filter("name", w.c.name, "str"),
    Filter("organization", w.c.organization_id),
)
ORDERING = {"id": w.c.id, "name": w.c.name}


@routes.get("/api/v1/workspaces")
async def list_workspaces(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    stmt = sa.select(w).where(w.c.organization_id == who.organization_id)
    stmt = apply_filters(stmt, request.query, FILTERS)
    stmt = apply_ordering(stmt, request.query.get("ordering"), ORDERING, [w.c.id])
    async with svc.db.reading() as conn:
        rows, pagination = await paginate(conn, request, svc.urls.base, stmt)
        results = await _render_rows(conn, svc.urls, who, rows)
    return web.json_response(envelope(pagination, results))


async def _workspace_row(conn: AsyncConnection, who: Actor, workspace_id: int) -> Any:
    row = (
        await conn.execute(
            sa.select(w).where(w.c.id == workspace_id, w.c.organization_id == who.organization_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"Workspace {workspace_id} not found.")
    return row


async def _workspace_json(conn: AsyncConnection, urls: Urls, who: Actor, workspace_id: int) -> Any:
    row = await _workspace_row(conn, who, workspace_id)
    return (await _render_rows(conn, urls, who, [row]))[0]


@routes.get("/api/v1/workspaces/{id}")
async def retrieve_workspace(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    async with svc.db.reading() as conn:
        return web.json_response(await _workspace_json(conn, svc.urls, who, path_id(request)))


def _check_organization(urls: Urls, who: Actor, sent: dict[str, Any]) -> None:
    if "organization" in sent:
        org_id = urls.id_from(sent.pop("organization"), "organizations", "organization")
        if org_id != who.organization_id:
            raise BadRequest(f"organization: organization {org_id} is not yours.")


@routes.post("/api/v1/workspaces")
async def create_workspace(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    who.require_manager()
    _body, sent = parse_body(WorkspaceBody, await read_object(request), required=("name",))
    _check_organization(svc.urls, who, sent)
    async with svc.db.transaction() as conn:
        workspace_id = await insert_returning_id(
            conn, w, organization_id=who.organization_id, created_at=utcnow(), **sent
        )
        body = await _workspace_json(conn, svc.urls, who, workspace_id)
    return web.json_response(body, status=201)


async def _update_workspace(request: web.Request, *, partial: bool) -> web.Response:
    svc, who = services(request), actor(request)
    workspace_id = path_id(request)
    async with svc.db.reading() as conn:
        await _workspace_row(conn, who, workspace_id)
    who.require_manager()
    _body, sent = parse_body(
        WorkspaceBody, await read_object(request), required=("name",), partial=partial
    )
    _check_organization(svc.urls, who, sent)
    async with svc.db.transaction() as conn:
        await _workspace_row(conn, who, workspace_id)
        if sent:
            await conn.execute(w.update().where(w.c.id == workspace_id).values(**sent))
        body = await _workspace_json(conn, svc.urls, who, workspace_id)
    return web.json_response(body)


@routes.patch("/api/v1/workspaces/{id}")
async def patch_workspace(request: web.Request) -> web.Response:
    return await _update_workspace(request, partial=True)


@routes.put("/api/v1/workspaces/{id}")
async def put_workspace(request: web.Request) -> web.Response:
    return await _update_workspace(request, partial=False)


@routes.delete("/api/v1/workspaces/{id}")
async def delete_workspace(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    workspace_id = path_id(request)
    async with svc.db.reading() as conn:
        await _workspace_row(conn, who, workspace_id)
    who.require_manager()
    async with svc.db.transaction() as conn:
        await _workspace_row(conn, who, workspace_id)
        q = t.queues
        count = (
            await conn.execute(
                sa.select(sa.func.count()).select_from(q).where(q.c.workspace_id == workspace_id)
            )
        ).scalar_one()
        if count:
            raise Conflict(
                f"Workspace {workspace_id} contains {count} queues; delete or move them first."
            )
        await conn.execute(w.delete().where(w.c.id == workspace_id))
    return web.Response(status=204)
