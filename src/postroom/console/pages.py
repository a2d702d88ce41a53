"""The console's pages: Overview, Mail log, Uploads, Failed, Document, Hooks.

Each page reads the same domain services as the REST API, with the logged-in user as the actor,
so a page shows exactly what that user could read through the API. Every list pages
(`page`, `page_size`) and filters (the page's own query parameters).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from postroom.clock import utcnow
from postroom.console.chart import hourly_bars
from postroom.console.render import filters_of, page_request, pager, render
from postroom.console.session import runtime
from postroom.domain import mail_log, operations, upload_log
from postroom.domain.access import Actor
from postroom.domain.documents import DOCUMENTS
from postroom.domain.hooks import HOOKS
from postroom.domain.listing import Page
from postroom.errors import NotFound
from postroom.status import AnnotationStatus
from postroom.urls import digits

View = Callable[[web.Request, Actor], Awaitable[web.StreamResponse]]
# The statuses the overview shows a column for, in lifecycle order.
OVERVIEW_STATUSES = (
    AnnotationStatus.IMPORTING,
    AnnotationStatus.FAILED_IMPORT,
    AnnotationStatus.TO_REVIEW,
    AnnotationStatus.REVIEWING,
    AnnotationStatus.POSTPONED,
    AnnotationStatus.CONFIRMED,
    AnnotationStatus.EXPORTING,
    AnnotationStatus.EXPORTED,
    AnnotationStatus.FAILED_EXPORT,
    AnnotationStatus.REJECTED,
    AnnotationStatus.DELETED,
)


async def overview(request: web.Request, who: Actor) -> web.StreamResponse:
    queues = await operations.overview(runtime(request), who)
    now = utcnow()
    rows = [{"queue": q, "chart": hourly_bars(q.hourly, now)} for q in queues]
    return render(
        request,
        "overview.html",
        {"title": "Overview", "rows": rows, "statuses": OVERVIEW_STATUSES, "now": now},
    )


def _list_page(
    request: web.Request,
    page: Page[Any],
    template: str,
    title: str,
    filters: tuple[str, ...],
    **context: Any,
) -> web.StreamResponse:
    """A paged, filtered list: its rows as `items`, the pager and the filter form's values."""
    return render(
        request,
        template,
        {
            "title": title,
            "items": page.items,
            "pager": pager(request, page),
            "filters": filters_of(request, filters),
            **context,
        },
    )


async def mail(request: web.Request, who: Actor) -> web.StreamResponse:
    rt = runtime(request)
    page = await mail_log.page_of(rt.db, who, request.query, page_request(request.query))
    return _list_page(
        request, page, "mail.html", "Mail log", ("sender", "client", "outcome", "queue")
    )


async def uploads(request: web.Request, who: Actor) -> web.StreamResponse:
    rt = runtime(request)
    page = await upload_log.page_of(rt, who, request.query, page_request(request.query))
    return _list_page(request, page, "uploads.html", "Uploads", ("user", "queue", "channel"))


async def failed(request: web.Request, who: Actor) -> web.StreamResponse:
    rt = runtime(request)
    page = await operations.failures(rt, who, request.query, page_request(request.query))
    return _list_page(
        request,
        page,
        "failed.html",
        "Failed",
        ("status", "queue", "file_name"),
        can_retry=who.sees_all_queues,
        retried=request.query.get("retried", ""),
        skipped=request.query.get("skipped", ""),
    )


def _path_id(request: web.Request) -> int:
    raw = request.match_info.get("id", "")
    if not digits(raw) or len(raw) > 18:
        raise NotFound("No such document.")
    return int(raw)


async def document(request: web.Request, who: Actor) -> web.StreamResponse:
    detail = await operations.document_detail(runtime(request), who, _path_id(request))
    context = {"title": "Document", "can_delete": who.role != "viewer", **detail}
    return render(request, "document.html", {**context, "deleted": request.query.get("deleted")})


async def document_content(request: web.Request, who: Actor) -> web.StreamResponse:
    stored = await DOCUMENTS.content(runtime(request), who, _path_id(request))
    headers = {**stored.headers, "Content-Disposition": _attachment(stored.headers)}
    return web.FileResponse(stored.path, headers=headers)


def _attachment(headers: dict[str, str]) -> str:
    # Downloaded, never shown inline under the console's origin (a stored HTML file stays inert).
    return headers.get("Content-Disposition", "attachment").replace("inline", "attachment", 1)


async def hooks(request: web.Request, who: Actor) -> web.StreamResponse:
    if not who.sees_all_queues:  # hooks carry endpoints and secrets: admins and managers only
        return render(request, "hooks.html", {"title": "Hooks", "hooks": None, "pager": None})
    rt = runtime(request)
    page = await HOOKS.list(rt, who, request.query, page_request(request.query))
    shown = [
        {
            "id": h["id"],
            "name": h["name"],
            "type": h["type"],
            "active": h["active"],
            "events": h["events"],
            "target": str(h["config"].get("url", "")),
            "queues": len(h["queues"]),
        }
        for h in page.items
    ]
    return render(
        request, "hooks.html", {"title": "Hooks", "hooks": shown, "pager": pager(request, page)}
    )
