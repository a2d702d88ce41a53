"""REST endpoints for the caller's organization (`/organizations`) and its group (`/organization_groups`).

A caller sees only their own organization; any other id is 404. Postroom has no multi-organization
licensing, so every organization is alone in an organization group that shares its id: the SDK
requires `organization_group` to be a URL, and that URL resolves.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.clock import iso
from postroom.db import tables as t
from postroom.errors import NotFound
from postroom.permissions import Actor
from postroom.web.bodies import path_id, read_object
from postroom.web.keys import actor, services
from postroom.web.listing import Filter, apply_filters, apply_ordering, envelope, paginate
from postroom.web.related import ids_by_owner
from postroom.web.resource_models import OrganizationBody, parse_body
from postroom.web.urls import Urls

routes = web.RouteTableDef()

o = t.organizations


async def render_organization(conn: AsyncConnection, urls: Urls, row: Any) -> dict[str, Any]:
    workspaces = await ids_by_owner(
        conn, t.workspaces.c.organization_id, t.workspaces.c.id, [row.id]
    )
    users = await ids_by_owner(conn, t.users.c.organization_id, t.users.c.id, [row.id])
    user_ids = users[row.id]
    return {
        "id": row.id,
        "url": urls.to("organizations", row.id),
        "name": row.name,
        "workspaces": urls.many("workspaces", workspaces[row.id]),
        "users": urls.many("users", user_ids),
        "organization_group": urls.to("organization_groups", row.id),
        "ui_settings": row.ui_settings or {},
        "metadata": row.metadata or {},
        "created_at": iso(row.created_at),
        "trial_expires_at": iso(row.trial_expires_at),
        "is_trial": row.is_trial,
        "oidc_provider": None,
        "internal_info": None,
        # The first user is the one bootstrap (or the organization's creator) made.
        "creator": urls.to("users", user_ids[0]) if user_ids else None,
        "modified_by": None,
        "modified_at": None,
        "settings": {},
        "sandbox": False,
    }


def _own(who: Actor) -> sa.Select[Any]:
    return sa.select(o).where(o.c.id == who.organization_id)


@routes.get("/api/v1/organizations")
async def list_organizations(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    filters = (Filter("id", o.c.id), Filter("name", o.c.name, "str"))
    stmt = apply_filters(_own(who), request.query, filters)
    stmt = apply_ordering(
        stmt, request.query.get("ordering"), {"id": o.c.id, "name": o.c.name}, [o.c.id]
    )
    async with svc.db.reading() as conn:
        rows, pagination = await paginate(conn, request, svc.urls.base, stmt)
        results = [await render_organization(conn, svc.urls, row) for row in rows]
    return web.json_response(envelope(pagination, results))


async def _organization(conn: AsyncConnection, who: Actor, org_id: int) -> Any:
    row = (await conn.execute(_own(who).where(o.c.id == org_id))).first()
    if row is None:
        raise NotFound(f"Organization {org_id} not found.")
    return row


@routes.get("/api/v1/organizations/{id}")
async def retrieve_organization(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    async with svc.db.reading() as conn:
        row = await _organization(conn, who, path_id(request))
        return web.json_response(await render_organization(conn, svc.urls, row))


@routes.patch("/api/v1/organizations/{id}")
async def patch_organization(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    org_id = path_id(request)
    async with svc.db.reading() as conn:
        await _organization(conn, who, org_id)
    who.require_admin()
    _body, sent = parse_body(OrganizationBody, await read_object(request), partial=True)
    async with svc.db.transaction() as conn:
        if sent:
            await conn.execute(o.update().where(o.c.id == org_id).values(**sent))
        row = await _organization(conn, who, org_id)
        return web.json_response(await render_organization(conn, svc.urls, row))


def render_organization_group(urls: Urls, row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "url": urls.to("organization_groups", row.id),
        "name": row.name,
        "is_trial": row.is_trial,
        "is_production": not row.is_trial,
        "deployment_location": "self-hosted",
        "features": None,
        "usage": {},
        "modified_by": None,
        "modified_at": None,
    }


@routes.get("/api/v1/organization_groups")
async def list_organization_groups(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    async with svc.db.reading() as conn:
        rows, pagination = await paginate(conn, request, svc.urls.base, _own(who))
    return web.json_response(
        envelope(pagination, [render_organization_group(svc.urls, row) for row in rows])
    )


@routes.get("/api/v1/organization_groups/{id}")
async def retrieve_organization_group(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    group_id = path_id(request)
    async with svc.db.reading() as conn:
        row = (await conn.execute(_own(who).where(o.c.id == group_id))).first()
    if row is None:
        raise NotFound(f"Organization group {group_id} not found.")
    return web.json_response(render_organization_group(svc.urls, row))
