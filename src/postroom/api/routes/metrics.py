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
from postroom.api.routing import Call, Download, Routes
from postroom.domain import jobs
from postroom.errors import AuthenticationFailed, NotFound

routes = Routes(prefix="")


def _check_scraper(request: web.Request, token: str) -> None:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
        raise AuthenticationFailed("The metrics endpoint needs the configured metrics token.")


@routes.get(
    "/metrics",
    auth="public",
    response=Download(("text/plain",), "Prometheus text format 0.0.4."),
    errors=(AuthenticationFailed, NotFound),
)
async def prometheus_metrics(call: Call) -> web.Response:
    """Prometheus metrics of this instance (plus the shared pipeline gauges)."""
    settings = call.rt.settings.metrics
    if not settings.enabled:
        raise NotFound()
    if settings.token:
        _check_scraper(call.request, settings.token)
    await jobs.refresh_gauges(call.rt.db)
    body = generate_latest(metrics.REGISTRY)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
