"""The outermost HTTP middleware: one access-log line and the request metrics for every request.

It sits outside the error middleware, so it sees the final status of every answer (errors
included). The route label is the route template (`/api/v1/queues/{id}`), never the raw path, to
keep the metric series bounded. The log line carries the method, path, status, duration, user id,
client address and the ids of the objects involved: those in the URL (`/queues/{id}` →
`queue=`) plus any a handler adds with `note_ids(request, upload=…, annotation=…)`, and the error
`code` of every 4xx/5xx answer. Never a header, a query string, a body or a credential. Health
checks and metrics scrapes that succeed are logged at DEBUG (a probe every few seconds would
drown the rest).

Each request gets an id: the client's `X-Request-ID` when it is sane (1 to 128 letters, digits
and `-_.:/+=@`), else a new random one. It is set in `logs.REQUEST_ID` while the request is
handled, so every log line of the request carries it, and returned as `X-Request-ID` on the
reply (`add_request_id_header`, run as the reply is prepared: errors and streams included).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from postroom import logs, metrics
from postroom.api.keys import ACTOR, ERROR_CODE, REQUEST_ID
from postroom.api.middleware.limits import client_address
from postroom.urls import digits

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

log = logging.getLogger("postroom.access")

LOG_IDS: web.RequestKey[dict[str, Any]] = web.RequestKey("log_ids")
REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9\-_.:/+=@]{1,128}")
# Routes probed often by machines: a success is logged at DEBUG, anything else as usual.
QUIET_ROUTES = frozenset({"/api/v1/health", "/metrics"})

# URL collection → the id name used in logs (the same names as the issue asks for).
_ID_NAMES = {
    "queues": "queue",
    "uploads": "upload",
    "documents": "document",
    "annotations": "annotation",
    "emails": "email",
    "tasks": "task",
    "inboxes": "inbox",
    "users": "user_ref",
    "workspaces": "workspace",
    "schemas": "schema",
    "hooks": "hook",
}


def note_ids(request: web.Request, **ids: Any) -> None:
    """Add object ids (upload=, annotation=, queue=, email=, document=) to this request's log line."""
    request.setdefault(LOG_IDS, {}).update(ids)


def route_template(request: web.Request) -> str:
    info = request.match_info
    if info.http_exception is not None or info.route.resource is None:
        return "unmatched"
    return info.route.resource.canonical


def _url_ids(request: web.Request, template: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    segments = template.split("/")
    for previous, segment in itertools.pairwise(segments):
        if segment.startswith("{") and previous in _ID_NAMES:
            value = request.match_info.get(segment.strip("{}").split(":")[0])
            if value is not None and digits(value) and len(value) <= 18:
                found[_ID_NAMES[previous]] = int(value)
    return found


def _is_upload(method: str, template: str) -> bool:
    return method == "POST" and (
        "/upload" in template or template in ("/api/v1/documents", "/api/v1/emails/import")
    )


def request_id_of(request: web.Request) -> str:
    """The client's X-Request-ID when sane, else a new one."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if _SANE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


async def add_request_id_header(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: every reply names its request id."""
    request_id = request.get(REQUEST_ID)
    if request_id is not None:
        response.headers[REQUEST_ID_HEADER] = request_id


def _record(
    request: web.Request, status: int, started: float, error_code: str | None = None
) -> None:
    elapsed = time.perf_counter() - started
    template = route_template(request)
    method = request.method
    metrics.HTTP_REQUESTS.labels(route=template, method=method, status=str(status)).inc()
    metrics.HTTP_DURATION.labels(route=template, method=method).observe(elapsed)
    if status in (201, 202) and _is_upload(method, template):
        # Body bytes of accepted uploads (multipart framing included: a few hundred bytes).
        metrics.UPLOAD_BYTES.labels(channel="http").inc(request.content.total_bytes)
        metrics.UPLOAD_REQUESTS.labels(channel="http").inc()
    actor = request.get(ACTOR)
    ids = {**_url_ids(request, template), **request.get(LOG_IDS, {})}
    level = logging.ERROR if status >= 500 else logging.INFO
    if status < 400 and template in QUIET_ROUTES:
        level = logging.DEBUG
    logs.event(
        log,
        f"{method} {request.path}",
        level=level,
        status=status,
        code=error_code if status >= 400 else None,
        duration_ms=round(elapsed * 1000, 1),
        user=actor.user_id if actor is not None else None,
        client=client_address(request),
        **ids,
    )


@web.middleware
async def observe_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    request_id = request[REQUEST_ID] = request_id_of(request)
    token = logs.REQUEST_ID.set(request_id)
    try:
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # redirects (303 of /tasks) travel as exceptions
            _record(request, exc.status, started)
            raise
        except asyncio.CancelledError:  # the client went away before the answer
            _record(request, 499, started, "client_closed_request")
            raise
        except Exception:
            _record(request, 500, started, "error")
            raise
        _record(request, response.status, started, response.get(ERROR_CODE))
        return response
    finally:
        logs.REQUEST_ID.reset(token)
