"""Lists: query parameters → WHERE clauses and ORDER BY, and one page of rows with the total.

Every listable resource declares a `Listing`: its filters (a tuple of `Filter`s) and its
orderable fields. The API edge parses `page`/`page_size` into a `PageRequest` and wraps the page
in the Rossum envelope. Unknown or empty parameters (`ordering=`, `sideload=`,
`include_total=true`, …) are ignored, as the official clients send them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.errors import BadRequest
from postroom.urls import MAX_ID, digits

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_PAGE_NUMBER = 10**9
T = TypeVar("T")


def _ints(name: str, raw: str) -> list[int]:
    values = []
    for part in raw.split(","):
        part = part.strip().rstrip("/").rsplit("/", 1)[-1]
        if not part:
            continue
        if not digits(part):
            raise BadRequest(f"{name}: expected ids separated by commas, got {raw!r}.")
        if len(part) <= 18 and int(part) <= MAX_ID:  # a larger id matches nothing
            values.append(int(part))
    return values


def comma_list(item: str) -> str:
    """A pattern: a comma list of `item`s, each with spaces around it or empty."""
    one = rf"\s*(?:{item})?\s*"
    return f"^{one}(?:,{one})*$"


def any_case(*words: str) -> str:
    """A pattern alternative matching each word in any letter case."""
    return "|".join(
        "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word) for word in words
    )


# An id, or a URL ending with one (`…/queues/12`, trailing slashes allowed).
IDS_PATTERN = comma_list(r"(?:[^,]*/)?[0-9]+/*")
BOOL_PATTERN = f"^(?:{any_case('true', 'false', 'yes', 'no')}|1|0)?$"
# The timestamps the document promises (`fromisoformat` reads more): a date, a time to the
# minute, second or microsecond, an offset or Z. Days stop at 28 so that every match is a date.
TIMESTAMP_PATTERN = (
    r"^\s*[1-9][0-9]{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
    r"(?:T(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?)?\s*$|^$"
)
_TIMESTAMP = {"type": "string", "pattern": TIMESTAMP_PATTERN}
_KIND_SCHEMAS: dict[str, Mapping[str, Any]] = {
    "ids": {"type": "string", "pattern": IDS_PATTERN},
    "bool": {"type": "string", "pattern": BOOL_PATTERN},
    "before": _TIMESTAMP,
    "after": _TIMESTAMP,
}


def _datetime(name: str, raw: str) -> datetime:
    try:
        text = raw.strip().replace("Z", "+00:00").replace("z", "+00:00").replace(" ", "+")
        value = datetime.fromisoformat(text)
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
    # The JSON schema of the values accepted (the OpenAPI document's); None: by `kind`.
    schema: Mapping[str, Any] | None = None

    def value_schema(self) -> Mapping[str, Any]:
        """What the filter accepts, as a JSON schema (anything it takes, nothing it refuses)."""
        if self.schema is not None:
            return self.schema
        return _KIND_SCHEMAS.get(self.kind, {"type": "string"})

    def clause(self, raw: str) -> sa.ColumnElement[bool]:
        col: sa.ColumnElement[Any] = self.column
        match self.kind:
            case "ids":
                return col.in_(_ints(self.param, raw))
            case "strs":
                return col.in_([v for v in raw.split(",") if v])
            case "str":
                return col == raw
            case "icontains":
                return sa.func.lower(col).contains(raw.lower())
            case "bool":
                return col == _bool(self.param, raw)
            case "before":
                return col < _datetime(self.param, raw)
            case "after":
                return col >= _datetime(self.param, raw)
            case "custom":
                assert self.build is not None
                return self.build(raw)
        raise AssertionError(self.kind)


def linked(param: str, column: Any, link: Any, target: Any) -> Filter:
    """A filter through a link table: the rows whose `column` is the `link` of a row whose
    `target` is one of the given ids (`?queue=1` on schemas: `schemas.id IN (SELECT
    queues.schema_id FROM queues WHERE queues.id IN (1))`)."""

    def build(raw: str) -> sa.ColumnElement[bool]:
        ids = Filter(param, target).clause(raw)
        result: sa.ColumnElement[bool] = column.in_(sa.select(link).where(ids))
        return result

    return Filter(param, kind="custom", build=build, schema=_KIND_SCHEMAS["ids"])


def apply_filters(
    stmt: sa.Select[Any], query: Mapping[str, str], filters: Sequence[Filter]
) -> sa.Select[Any]:
    for f in filters:
        raw = query.get(f.param)
        if raw is None or raw == "":
            continue
        stmt = stmt.where(f.clause(raw))
    return stmt


def ordering_pattern(allowed: Collection[str]) -> str:
    """The pattern of an `ordering` value over these field names."""
    if not allowed:
        return r"^[\s,]*$"  # nothing to order by: only empty items
    names = "|".join(re.escape(name) for name in sorted(allowed, key=lambda n: (-len(n), n)))
    return comma_list(f"[-+]*(?:{names})")


def ordering_keys(raw: str | None, allowed: Collection[str]) -> list[tuple[str, bool]]:
    """`ordering=name,-id` → [("name", False), ("id", True)]; 400 naming an unknown field."""
    keys = []
    for part in (raw or "").split(","):
        part = part.strip()
        if not part:
            continue
        name = part.lstrip("-+")
        if name not in allowed:
            raise BadRequest(
                f"ordering: unknown field {name!r} (allowed: {', '.join(sorted(allowed))})."
            )
        keys.append((name, part.startswith("-")))
    return keys


def apply_ordering(
    stmt: sa.Select[Any],
    raw: str | None,
    fields: Mapping[str, Any],
    default: Sequence[Any],
) -> sa.Select[Any]:
    order = [
        fields[name].desc() if descending else fields[name].asc()
        for name, descending in ordering_keys(raw, fields)
    ]
    return stmt.order_by(*(order or default))


@dataclass(frozen=True)
class Listing:
    """What a list endpoint may filter and order by; `default` orders when nothing is asked,
    `tiebreak` always comes last (rows equal in the asked order keep one order across pages)."""

    filters: Sequence[Filter]
    ordering: Mapping[str, Any]
    default: Sequence[Any] = ()
    tiebreak: Sequence[Any] = ()

    def apply(self, stmt: sa.Select[Any], query: Mapping[str, str]) -> sa.Select[Any]:
        stmt = apply_filters(stmt, query, self.filters)
        stmt = apply_ordering(stmt, query.get("ordering"), self.ordering, self.default)
        return stmt.order_by(*self.tiebreak)


@dataclass(frozen=True)
class PageRequest:
    number: int = 1
    size: int = DEFAULT_PAGE_SIZE

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of results and how many there are in all."""

    items: list[T]
    total: int
    request: PageRequest

    @property
    def total_pages(self) -> int:
        return max(1, math.ceil(self.total / self.request.size)) if self.total else 0


async def fetch_page(
    conn: AsyncConnection, stmt: sa.Select[Any], page: PageRequest
) -> tuple[list[sa.Row[Any]], int]:
    """The rows of `stmt` (filtered and ordered already) on the requested page, and the total."""
    counted = sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery())
    total = (await conn.execute(counted)).scalar_one()
    rows = list((await conn.execute(stmt.limit(page.size).offset(page.offset))).all())
    return rows, int(total)
