"""The aiohttp application: middlewares and every route table.

Middlewares, outermost first: access log + metrics, errors → JSON, per-address rate limit,
authentication, per-user rate limit.
"""

from __future__ import annotations

from aiohttp import web

from postroom.ratelimit import address_rate_limit, rate_limit_middleware
from postroom.services import Services
from postroom.web import (
    annotations,
    apidocs,
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
from postroom.web.observe import observe_middleware

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
    apidocs,
)


def build_app(services: Services) -> web.Application:
    # client_max_size bounds only bodies read whole (JSON); uploads are streamed chunk by chunk.
    app = web.Application(
        middlewares=[
            observe_middleware,
            errors_middleware,
            address_rate_limit,
            auth.auth_middleware,
            rate_limit_middleware,
        ],
        client_max_size=4 * 1024 * 1024,
    )
    app[SERVICES] = services
    for module in ROUTE_MODULES:
        app.router.add_routes(module.routes)
    return app
