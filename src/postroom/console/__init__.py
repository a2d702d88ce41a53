"""The operator console: server-rendered pages at `/` for the people who run Postroom.

An edge beside the REST API, mounted on the same aiohttp application by the composition root
(`install`). It reads the same domain services as the API, as the logged-in user, and keeps no
SQL of its own. Pages are Jinja2 templates (autoescaped) with a little vanilla JavaScript shipped
in the package (`static/`): no build step, nothing from a CDN.

`GET /` answers API clients (no `text/html` in Accept) with a small JSON index of the API's
documents, and browsers with the console (the login page first).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from postroom.console.routes import ROUTE_PREFIX, register
from postroom.console.session import RUNTIME
from postroom.runtime import Runtime

STATIC_DIR = Path(__file__).parent / "static"

__all__ = ["ROUTE_PREFIX", "install", "is_console_route"]


def install(app: web.Application, rt: Runtime) -> None:
    """Add the console's routes, templates and assets to the (API's) application."""
    from postroom.console import render

    app[RUNTIME] = rt
    render.setup(app)
    register(app.router, STATIC_DIR)


def is_console_route(route: web.AbstractRoute) -> bool:
    """Whether a route of the application is the console's (not an API endpoint)."""
    name = route.resource.name if route.resource is not None else None
    return bool(name and name.startswith(ROUTE_PREFIX))
