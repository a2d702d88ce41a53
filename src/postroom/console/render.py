"""Templates (Jinja2, autoescaped) and the helpers every console page uses: paging, filters,
formats, the error page."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
import jinja2
from aiohttp import web

from postroom.console.session import ACTOR, csrf_token
from postroom.domain.listing import Page, PageRequest
from postroom.urls import digits

JINJA: web.AppKey[jinja2.Environment] = web.AppKey("console_jinja")
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 25


def when(value: datetime | None) -> str:
    return "" if value is None else f"{value:%Y-%m-%d %H:%M:%S} UTC"


def size(value: int | None) -> str:
    if value is None:
        return ""
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return str(value)


FILTERS: dict[str, Callable[..., str]] = {"when": when, "size": size}


def setup(app: web.Application) -> None:
    aiohttp_jinja2.setup(
        app,
        app_key=JINJA,
        loader=jinja2.PackageLoader("postroom.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        filters=FILTERS,
    )


def render(
    request: web.Request, template: str, context: Mapping[str, Any], status: int = 200
) -> web.Response:
    full = {
        "actor": request.get(ACTOR),
        "csrf_token": csrf_token(request),
        "path": request.path,
        **context,
    }
    response = aiohttp_jinja2.render_template(template, request, full, app_key=JINJA, status=status)
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


def error_page(request: web.Request, status: int, detail: str) -> web.Response:
    context = {"title": f"Error {status}", "status": status, "detail": detail}
    return render(request, "error.html", context, status=status)


def page_request(query: Mapping[str, str]) -> PageRequest:
    def number(name: str, default: int) -> int:
        raw = query.get(name, "")
        # ASCII digits, at most 9 of them (`²` or a 30-digit page is the default, never a 500)
        return int(raw) if digits(raw) and len(raw) <= 9 and int(raw) > 0 else default

    return PageRequest(
        number=number("page", 1),
        size=min(MAX_PAGE_SIZE, number("page_size", DEFAULT_PAGE_SIZE)),
    )


def pager(request: web.Request, page: Page[Any]) -> dict[str, Any]:
    """Links to the neighbouring pages, keeping every other query parameter."""
    kept = {k: v for k, v in request.query.items() if k != "page" and v != ""}

    def link(number: int) -> str:
        return request.path + "?" + urlencode({**kept, "page": number})

    current = page.request.number
    return {
        "number": current,
        "total_pages": page.total_pages,
        "total": page.total,
        "previous": link(current - 1) if current > 1 else None,
        "next": link(current + 1) if current < page.total_pages else None,
    }


def filters_of(request: web.Request, names: tuple[str, ...]) -> dict[str, str]:
    """The filter values a page's form shows back (empty when not given)."""
    return {name: request.query.get(name, "") for name in names}
