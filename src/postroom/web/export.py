"""`GET` and `POST /api/v1/queues/{id}/export`: annotations of a queue as JSON, CSV, XML or XLSX.

The format comes from `format` or the `Accept` header (JSON when neither names one). Every
annotation-list filter applies. JSON is paginated like a list; CSV, XML and XLSX hold every
matching annotation unless `page`/`page_size` is given (the SDK streams them unpaged). Output is
streamed in chunks as batches are read, so memory stays flat whatever the size.

`POST … ?to_status=exporting|exported` moves the selected `confirmed` annotations, in one
transaction that also fixes which annotations the export holds; others (already exporting or
exported, say) are exported unchanged. Everything a client can get wrong is checked before the
first byte is sent, so errors still answer `{"detail", "code"}`.
"""

from __future__ import annotations

import logging
import math
from array import array
from collections.abc import AsyncIterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from aiohttp import web

from postroom import lifecycle
from postroom.db import tables as t
from postroom.errors import BadRequest, NotFound
from postroom.export.csv_writer import csv_dialect, write_csv
from postroom.export.json import write_json
from postroom.export.records import ExportContext, FilteredSelection, FixedSelection, Selection
from postroom.export.table import Column, resolve_columns
from postroom.export.xlsx_writer import CONTENT_TYPE as XLSX_TYPE
from postroom.export.xlsx_writer import file_chunks, write_xlsx_file
from postroom.export.xml_writer import write_xml
from postroom.permissions import Actor, visible_queues_clause
from postroom.services import Services
from postroom.web.annotation_filters import ANNOTATION_FILTERS
from postroom.web.auth import basic_auth_allowed
from postroom.web.bodies import path_id
from postroom.web.keys import actor, services
from postroom.web.listing import DEFAULT_PAGE_SIZE, apply_filters, page_url

log = logging.getLogger("postroom.export")

routes = web.RouteTableDef()

CONTENT_TYPES = {
    "json": "application/json; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "xml": "application/xml; charset=utf-8",
    "xlsx": XLSX_TYPE,
}
_ACCEPTED = {
    "application/json": "json",
    "text/csv": "csv",
    "application/csv": "csv",
    "application/xml": "xml",
    "text/xml": "xml",
    XLSX_TYPE: "xlsx",
}
TO_STATUSES = ("exporting", "exported")
# Exports are read in bigger pages than lists (the reference's example asks for 1000).
MAX_EXPORT_PAGE_SIZE = 1000
FLUSH_BYTES = 64 * 1024

a = t.annotations.c


def negotiate_format(request: web.Request) -> str:
    raw = request.query.get("format", "").strip().lower()
    if raw:
        if raw not in CONTENT_TYPES:
            raise BadRequest(f"format: expected one of {', '.join(CONTENT_TYPES)}, got {raw!r}.")
        return raw
    for part in request.headers.get("Accept", "").split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media in _ACCEPTED:
            return _ACCEPTED[media]
    return "json"


def _page(query: Mapping[str, str]) -> tuple[int, int]:
    def number(name: str, default: int) -> int:
        raw = query.get(name, "")
        if raw == "":
            return default
        if not raw.isdigit() or int(raw) < 1:
            raise BadRequest(f"{name}: expected a positive integer, got {raw!r}.")
        return int(raw)

    size = number("page_size", DEFAULT_PAGE_SIZE)
    if size > MAX_EXPORT_PAGE_SIZE:
        raise BadRequest(f"page_size: at most {MAX_EXPORT_PAGE_SIZE} for an export.")
    return number("page", 1), size


@dataclass(frozen=True)
class ExportRequest:
    """Everything decided and validated before any byte is sent."""

    fmt: str
    queue_id: int
    schema: list[dict[str, Any]]
    where: sa.ColumnElement[bool]
    page: tuple[int, int] | None  # (page, page_size) or None for everything
    to_status: str | None
    columns: list[Column]
    dialect: dict[str, Any]


async def _queue_schema(svc: Services, who: Actor, queue_id: int) -> list[dict[str, Any]]:
    q, s = t.queues.c, t.schemas.c
    async with svc.db.reading() as conn:
        schema = (
            await conn.execute(
                sa.select(s.content)
                .join(t.queues, q.schema_id == s.id)
                .where(
                    q.id == queue_id,
                    q.organization_id == who.organization_id,
                    visible_queues_clause(who, q.id),
                )
            )
        ).first()
    if schema is None:
        raise NotFound(f"Queue {queue_id} not found.")
    return list(schema.content or [])


async def parse_export_request(request: web.Request, *, post: bool) -> ExportRequest:
    who = actor(request)
    queue_id = path_id(request)
    query = request.query
    fmt = negotiate_format(request)
    to_status = query.get("to_status") or None
    if to_status is not None:
        if not post:
            raise BadRequest("to_status: only accepted with POST.")
        if to_status not in TO_STATUSES:
            raise BadRequest(f"to_status: expected exporting or exported, got {to_status!r}.")
        who.require_annotator()
    schema = await _queue_schema(services(request), who, queue_id)
    filtered = apply_filters(
        sa.select(a.id).where(a.queue_id == queue_id, a.organization_id == who.organization_id),
        query,
        ANNOTATION_FILTERS,
    )
    assert filtered.whereclause is not None
    tabular = fmt in ("csv", "xlsx")
    return ExportRequest(
        fmt=fmt,
        queue_id=queue_id,
        schema=schema,
        where=filtered.whereclause,
        page=_page(query) if fmt == "json" or "page" in query or "page_size" in query else None,
        to_status=to_status,
        columns=resolve_columns(schema, query) if tabular else [],
        dialect=csv_dialect(query) if fmt == "csv" else {},
    )


def _pagination(
    request: web.Request, svc: Services, plan: ExportRequest, total: int
) -> dict[str, Any]:
    if plan.page is None:
        return {"total": total, "total_pages": 1 if total else 0, "next": None, "previous": None}
    page, size = plan.page
    pages = max(1, math.ceil(total / size)) if total else 0
    return {
        "total": total,
        "total_pages": pages,
        "next": page_url(request, svc.urls.base, page + 1) if page < pages else None,
        "previous": page_url(request, svc.urls.base, page - 1) if page > 1 else None,
    }


def _ids_query(plan: ExportRequest) -> sa.Select[Any]:
    stmt = sa.select(a.id).where(plan.where).order_by(a.id)
    if plan.page is not None:
        page, size = plan.page
        stmt = stmt.limit(size).offset((page - 1) * size)
    return stmt


async def select_annotations(
    svc: Services, who: Actor, plan: ExportRequest
) -> tuple[Selection, int]:
    """Which annotations the export holds, and how many match the filters in all."""
    count = sa.select(sa.func.count()).select_from(t.annotations).where(plan.where)
    if plan.to_status is None:
        async with svc.db.reading() as conn:
            total = int((await conn.execute(count)).scalar_one())
            if plan.page is None:
                return FilteredSelection((plan.where,)), total
            ids = array("q", (await conn.execute(_ids_query(plan))).scalars())
        return FixedSelection(ids), total
    async with svc.db.transaction() as conn:
        total = int((await conn.execute(count)).scalar_one())
        ids = array("q", (await conn.execute(_ids_query(plan))).scalars())
        for start in range(0, len(ids), 500):
            await lifecycle.move_where(
                conn,
                plan.to_status,
                a.id.in_(list(ids[start : start + 500])),
                actor_id=who.user_id,
                only_from=["confirmed"],
            )
    if plan.to_status == "exporting":
        svc.jobs_available.set()
    return FixedSelection(ids), total


def _chunks(
    plan: ExportRequest, ctx: ExportContext, svc: Services, selection: Selection
) -> AsyncIterator[bytes]:
    batches = selection.batches(svc.db)
    if plan.fmt == "csv":
        return write_csv(ctx, batches, plan.columns, plan.dialect)
    if plan.fmt == "xml":
        return write_xml(ctx, batches)
    return write_json(ctx, batches)


async def _stream(
    request: web.Request, response: web.StreamResponse, chunks: AsyncIterator[bytes]
) -> None:
    """Send `chunks` in pieces of about FLUSH_BYTES. A failure after the first byte cannot
    become an error body: it is logged and the connection dropped, so the client sees a
    truncated (chunked) response, never a complete-looking one."""
    await response.prepare(request)
    pending: list[bytes] = []
    size = 0
    try:
        async for chunk in chunks:
            pending.append(chunk)
            size += len(chunk)
            if size >= FLUSH_BYTES:
                await response.write(b"".join(pending))
                pending, size = [], 0
        if pending:
            await response.write(b"".join(pending))
    except (ConnectionResetError, ConnectionError):
        raise
    except Exception:
        log.exception("export of %s failed while streaming", request.path)
        raise ConnectionResetError("export failed after the response started") from None
    await response.write_eof()


def _attachment(plan: ExportRequest) -> str:
    return f'attachment; filename="queue-{plan.queue_id}-export.{plan.fmt}"'


async def run_export(request: web.Request, *, post: bool) -> web.StreamResponse:
    svc = services(request)
    who = actor(request)
    plan = await parse_export_request(request, post=post)
    selection, total = await select_annotations(svc, who, plan)
    ctx = ExportContext(svc.urls, plan.schema, _pagination(request, svc, plan, total))
    response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPES[plan.fmt]})
    if plan.fmt != "json":
        response.headers["Content-Disposition"] = _attachment(plan)
    if plan.fmt == "xlsx":
        path = await write_xlsx_file(
            ctx, selection.batches(svc.db), plan.columns, svc.blobs.tmp_dir
        )
        try:
            response.content_length = path.stat().st_size
            await _stream(request, response, file_chunks(path))
        finally:
            with suppress(FileNotFoundError):
                path.unlink()
        return response
    response.enable_chunked_encoding()
    await _stream(request, response, _chunks(plan, ctx, svc, selection))
    return response


# No implicit HEAD: it would build a whole export only to drop it.
@routes.get("/api/v1/queues/{id}/export", allow_head=False)
@basic_auth_allowed
async def export_get(request: web.Request) -> web.StreamResponse:
    return await run_export(request, post=False)


@routes.post("/api/v1/queues/{id}/export")
@basic_auth_allowed
async def export_post(request: web.Request) -> web.StreamResponse:
    return await run_export(request, post=True)
