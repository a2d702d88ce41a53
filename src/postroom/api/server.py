"""The aiohttp application of the REST API: middlewares, and the endpoints of every route module.

Middlewares, outermost first: access log + metrics, errors → JSON, per-address rate limit,
authentication, per-user rate limit, idempotency keys (of the creating POSTs). The OpenAPI document is built once here, from the same
declarations the router is built from.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from postroom.api.keys import INTAKE, RUNTIME
from postroom.api.middleware.auth import auth_middleware
from postroom.api.middleware.errors import errors_middleware
from postroom.api.middleware.idempotency import idempotency_middleware
from postroom.api.middleware.limits import address_rate_limit, trust_proxies, user_rate_limit
from postroom.api.middleware.observe import add_request_id_header, observe_middleware
from postroom.api.routes import ROUTE_MODULES, docs
from postroom.api.routing import ENDPOINTS, Routes
from postroom.intake.service import Intake
from postroom.runtime import Runtime

# Bounds only bodies read whole (JSON, forms); uploads are streamed chunk by chunk.
MAX_READ_BODY = 4 * 1024 * 1024


def build_app(
    rt: Runtime, intake: Intake, modules: Iterable[Routes] = ROUTE_MODULES
) -> web.Application:
    app = web.Application(
        middlewares=[
            observe_middleware,
            errors_middleware,
            address_rate_limit,
            auth_middleware,
            user_rate_limit,
            idempotency_middleware,
        ],
        client_max_size=MAX_READ_BODY,
    )
    app.on_response_prepare.append(add_request_id_header)
    app[RUNTIME] = rt
    app[INTAKE] = intake
    trust_proxies(app, rt.settings.http.forwarded_allow_ips)
    endpoints = []
    for routes in modules:
        routes.register(app.router)
        endpoints.extend(routes.endpoints)
    app[ENDPOINTS] = tuple(endpoints)
    docs.prepare_document(app)
    return app
