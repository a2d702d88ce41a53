"""REST endpoints for metrics (placeholder: filled in by its issue)."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
