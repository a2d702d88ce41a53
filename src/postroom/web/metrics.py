"""`GET /metrics`: the Prometheus text exposition of `postroom.metrics.REGISTRY`.

An operator's scraper calls it, not an API user, so it does not take API tokens. It answers
without authentication by default — the figures are operational counts, never content or
names — and an operator who exposes the API port publicly either sets `metrics.token` (the
scraper then sends `Authorization: Bearer <token>`, Prometheus' `authorization` scrape option)
or turns it off with `metrics.enabled = false` (then 404).
"""

from __future__ import annotations

import hmac

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from postroom import metrics
from postroom.errors import AuthenticationFailed, NotFound
from postroom.web.auth import public
from postroom.web.keys import services
from postroom.web.openapi import operation

routes = web.RouteTableDef()


def _check_scraper(request: web.Request, token: str) -> None:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
        raise AuthenticationFailed("The metrics endpoint needs the configured metrics token.")


@routes.get("/metrics")
@public
@operation(responses={200: "Prometheus text format 0.0.4."}, response_media=("text/plain",))
async def prometheus_metrics(request: web.Request) -> web.Response:
    """Prometheus metrics of this instance (plus the shared pipeline gauges)."""
    svc = services(request)
    settings = svc.settings.metrics
    if not settings.enabled:
        raise NotFound()
    if settings.token:
        _check_scraper(request, settings.token)
    async with svc.db.reading() as conn:
        await metrics.refresh_pipeline_gauges(conn)
    body = generate_latest(metrics.REGISTRY)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
