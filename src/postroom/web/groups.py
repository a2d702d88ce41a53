"""REST endpoints for user roles (`/groups`): the fixed list of `permissions.GROUPS`, read-only."""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web

from postroom.errors import BadRequest, NotFound
from postroom.permissions import GROUPS
from postroom.web.bodies import path_id
from postroom.web.keys import services
from postroom.web.listing import envelope, page_params, page_url
from postroom.web.urls import Urls

routes = web.RouteTableDef()


def render_group(urls: Urls, group_id: int) -> dict[str, Any]:
    return {"id": group_id, "url": urls.to("groups", group_id), "name": GROUPS[group_id - 1][0]}


def _ordered(ids: list[int], ordering: str) -> list[int]:
    for part in reversed([p.strip() for p in ordering.split(",") if p.strip()]):
        name = part.lstrip("-+")
        if name not in ("id", "name"):
            raise BadRequest(f"ordering: unknown field {name!r} (allowed: id, name).")
        key = (lambda i: GROUPS[i - 1][0]) if name == "name" else (lambda i: i)
        ids = sorted(ids, key=key, reverse=part.startswith("-"))
    return ids


@routes.get("/api/v1/groups")
async def list_groups(request: web.Request) -> web.Response:
    urls = services(request).urls
    ids = list(range(1, len(GROUPS) + 1))
    names = {n for n in request.query.get("name", "").split(",") if n}
    if names:
        ids = [i for i in ids if GROUPS[i - 1][0] in names]
    ids = _ordered(ids, request.query.get("ordering", ""))
    page, size = page_params(request)
    total_pages = math.ceil(len(ids) / size)
    pagination = {
        "total": len(ids),
        "total_pages": total_pages,
        "next": page_url(request, urls.base, page + 1) if page < total_pages else None,
        "previous": page_url(request, urls.base, page - 1) if page > 1 else None,
    }
    chosen = ids[(page - 1) * size : page * size]
    return web.json_response(envelope(pagination, [render_group(urls, i) for i in chosen]))


@routes.get("/api/v1/groups/{id}")
async def retrieve_group(request: web.Request) -> web.Response:
    group_id = path_id(request)
    if not 1 <= group_id <= len(GROUPS):
        raise NotFound(f"Group {group_id} not found.")
    return web.json_response(render_group(services(request).urls, group_id))
