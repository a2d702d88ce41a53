"""`GET /api/v1/health`: liveness and database reachability, without authentication."""

from __future__ import annotations

from aiohttp import web

from postroom.web.auth import public
from postroom.web.keys import services

routes = web.RouteTableDef()


@routes.get("/api/v1/health")
@public
async def health(request: web.Request) -> web.Response:
    if await services(request).db.ping():
        return web.json_response({"status": "ok", "database": "ok"})
    return web.json_response({"status": "error", "database": "unreachable"}, status=503)
