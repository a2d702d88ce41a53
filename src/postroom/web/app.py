"""The aiohttp application: middlewares (errors outermost, then authentication) and every route table."""

from __future__ import annotations

from aiohttp import web

from postroom.services import Services
from postroom.web import (
    annotations,
    auth,
    documents,
    emails,
    export,
    groups,
    health,
    hooks,
    inboxes,
    metrics,
    organizations,
    queues,
    review,
    schemas,
    tasks,
    uploads,
    users,
    workspaces,
)
from postroom.web.errors import errors_middleware
from postroom.web.keys import SERVICES

ROUTE_MODULES = (
    health,
    auth,
    organizations,
    groups,
    users,
    workspaces,
    schemas,
    inboxes,
    hooks,
    queues,
    uploads,
    tasks,
    documents,
    annotations,
    emails,
    review,
    export,
    metrics,
)


def build_app(services: Services) -> web.Application:
    # client_max_size bounds only bodies read whole (JSON); uploads are streamed chunk by chunk.
    app = web.Application(
        middlewares=[errors_middleware, auth.auth_middleware],
        client_max_size=4 * 1024 * 1024,
    )
    app[SERVICES] = services
    for module in ROUTE_MODULES:
        app.router.add_routes(module.routes)
    return app
