"""Lists on the wire: `page`/`page_size` in, the Rossum pagination envelope out.

`pagination.total` and `total_pages` are always present; `next`/`previous` are absolute URLs of
the same request with another `page`, or null.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from postroom.domain.listing import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_NUMBER,
    MAX_PAGE_SIZE,
    Page,
    PageRequest,
)
from postroom.errors import BadRequest
from postroom.urls import digits


def page_request(query: Mapping[str, str], *, most: int | None = None) -> PageRequest:
    """`page` and `page_size` (400 unless positive integers). A list clamps `page_size` to
    MAX_PAGE_SIZE; with `most` (an export reads bigger pages) a larger one is a 400 instead."""

    def number(name: str, default: int) -> int:
        raw = query.get(name, "")
        if raw == "":
            return default
        # Bounded so that page * page_size stays a valid SQL OFFSET.
        if not digits(raw) or len(raw) > 10 or not 1 <= int(raw) <= MAX_PAGE_NUMBER:
            raise BadRequest(
                f"{name}: expected a positive integer up to {MAX_PAGE_NUMBER}, got {raw!r}."
            )
        return int(raw)

    page = number("page", 1)
    size = number("page_size", DEFAULT_PAGE_SIZE)
    if most is None:
        size = min(size, MAX_PAGE_SIZE)
    elif size > most:
        raise BadRequest(f"page_size: at most {most} here.")
    return PageRequest(page, size)


def _page_url(request: web.Request, base_url: str, number: int) -> str:
    return base_url + str(request.rel_url.update_query(page=str(number)))


def pagination(request: web.Request, base_url: str, page: Page[Any]) -> dict[str, Any]:
    """The envelope's `pagination` of `page`, its links built from this request."""
    number, pages = page.request.number, page.total_pages
    return {
        "total": page.total,
        "total_pages": pages,
        "next": _page_url(request, base_url, number + 1) if number < pages else None,
        "previous": _page_url(request, base_url, number - 1) if number > 1 else None,
    }


def envelope(request: web.Request, base_url: str, page: Page[Any]) -> dict[str, Any]:
    return {"pagination": pagination(request, base_url, page), "results": page.items}
