"""Lists: filters from query parameters, ordering, and the Rossum pagination envelope.

Every list endpoint declares its filters as a tuple of `Filter`s and its orderable fields as a
mapping; `paginate` applies `page`/`page_size`, counts the total and builds absolute next/previous
links. Unknown or empty parameters (`ordering=`, `sideload=`, `include_total=true`, …) are ignored,
as the official clients send them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.errors import BadRequest
from postroom.web.urls import MAX_ID

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_PAGE_NUMBER = 10**9


def _ints(name: str, raw: str) -> list[int]:
    values = []
    for part in raw.split(","):
        part = part.strip().rstrip("/").rsplit("/", 1)[-1]
        if not part:
            continue
        if not part.isdigit():
            raise BadRequest(f"{name}: expected ids separated by commas, got {raw!r}.")
        if int(part) <= MAX_ID:  # a larger id matches nothing
            values.append(int(part))
    return values


def _datetime(name: str, raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise BadRequest(f"{name}: expected an ISO 8601 timestamp, got {raw!r}.") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _bool(name: str, raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise BadRequest(f"{name}: expected true or false, got {raw!r}.")


@dataclass(frozen=True)
class Filter:
    """One query parameter mapped to a WHERE clause.

    kind: "ids" (comma list of ids or URLs), "strs" (comma list), "str" (exact), "icontains",
    "bool", "before"/"after" (timestamps; `before` is exclusive, `after` inclusive), or
    "custom" with `build(raw) -> clause`.
    """

    param: str
    column: Any = None
    kind: str = "ids"
    build: Callable[[str], sa.ColumnElement[bool]] | None = None

    def clause(self, raw: str) -> sa.ColumnElement[bool]:
        col = self.column
        match self.kind:
            case "ids":
                return col.in_(_ints(self.param, raw))  # type: ignore[no-any-return]
            case "strs":
                return col.in_([v for v in raw.split(",") if v])  # type: ignore[no-any-return]
            case "str":
                return col == raw  # type: ignore[no-any-return]
            case "icontains":
                return sa.func.lower(col).contains(raw.lower())  # type: ignore[no-any-return]
            case "bool":
                return col == _bool(self.param, raw)  # type: ignore[no-any-return]
            case "before":
                return col < _datetime(self.param, raw)  # type: ignore[no-any-return]
            case "after":
                return col >= _datetime(self.param, raw)  # type: ignore[no-any-return]
            case "custom":
                assert self.build is not None
                return self.build(raw)
        raise AssertionError(self.kind)


def apply_filters(
    stmt: sa.Select[Any], query: Mapping[str, str], filters: Sequence[Filter]
) -> sa.Select[Any]:
    for f in filters:
        raw = query.get(f.param)
        if raw is None or raw == "":
            continue
        stmt = stmt.where(f.clause(raw))
    return stmt


def apply_ordering(
    stmt: sa.Select[Any],
    raw: str | None,
    fields: Mapping[str, Any],
    default: Sequence[Any],
) -> sa.Select[Any]:
    order: list[Any] = []
    for part in (raw or "").split(","):
        part = part.strip()
        if not part:
            continue
        descending = part.startswith("-")
        name = part.lstrip("-+")
        if name not in fields:
            raise BadRequest(
                f"ordering: unknown field {name!r} (allowed: {', '.join(sorted(fields))})."
            )
        order.append(fields[name].desc() if descending else fields[name].asc())
    return stmt.order_by(*(order or default))


def page_params(request: web.Request) -> tuple[int, int]:
    def number(name: str, default: int) -> int:
        raw = request.query.get(name, "")
        if raw == "":
            return default
        # Bounded so that page * page_size stays a valid SQL OFFSET.
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_NUMBER:
            raise BadRequest(
                f"{name}: expected a positive integer up to {MAX_PAGE_NUMBER}, got {raw!r}."
            )
        return int(raw)

    return number("page", 1), min(number("page_size", DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE)


def page_url(request: web.Request, base_url: str, page: int) -> str:
    return base_url + str(request.rel_url.update_query(page=str(page)))


async def paginate(
    conn: AsyncConnection,
    request: web.Request,
    base_url: str,
    stmt: sa.Select[Any],
) -> tuple[list[sa.Row[Any]], dict[str, Any]]:
    """Run `stmt` (already filtered and ordered) for the requested page."""
    page, size = page_params(request)
    total = (
        await conn.execute(sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery()))
    ).scalar_one()
    rows = list((await conn.execute(stmt.limit(size).offset((page - 1) * size))).all())
    total_pages = max(1, math.ceil(total / size)) if total else 0
    pagination = {
        "total": total,
        "total_pages": total_pages,
        "next": page_url(request, base_url, page + 1) if page < total_pages else None,
        "previous": page_url(request, base_url, page - 1) if page > 1 else None,
    }
    return rows, pagination


def envelope(pagination: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
    return {"pagination": pagination, "results": results}
