"""`GET /api/v1/health`: liveness and database reachability, without authentication."""

from __future__ import annotations

from aiohttp import web
from typing_extensions import TypedDict

from postroom.api.routing import Call, Routes

routes = Routes()


class Health(TypedDict):
    status: str
    database: str


@routes.get("/health", auth="public", response=Health, also={503: Health})
async def health(call: Call) -> Health | web.Response:
    """Liveness and database reachability (503 while the database cannot be reached)."""
    if await call.rt.db.ping():
        return {"status": "ok", "database": "ok"}
    return web.json_response({"status": "error", "database": "unreachable"}, status=503)
