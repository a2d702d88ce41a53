"""A queue's export: which annotations it holds, in which format, and the file that carries them.

The format comes from `format` or the `Accept` header (JSON when neither names one). Every
annotation-list filter applies. JSON is paginated like a list; CSV, XML and XLSX hold every
matching annotation unless `page`/`page_size` is given (the SDK streams them unpaged).

`POST … ?to_status=exporting|exported` moves the selected `confirmed` annotations, in one
transaction that also fixes which annotations the export holds; others (already exporting or
exported, say) are exported unchanged. Everything a client can get wrong is checked before the
first byte is written, so errors still answer `{"detail", "code"}`; the API edge then streams
the chunks (`api.routes.queue_export`).
"""

from __future__ import annotations

from array import array
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from postroom.db import tables as t
from postroom.domain import lifecycle
from postroom.domain.access import Actor
from postroom.domain.annotations import LISTING
from postroom.domain.listing import Page, PageRequest, apply_filters
from postroom.domain.queues import QUEUES
from postroom.errors import BadRequest
from postroom.export.csv_writer import csv_dialect, write_csv
from postroom.export.json_writer import write_json
from postroom.export.records import ExportContext, FilteredSelection, FixedSelection, Selection
from postroom.export.table import Column, resolve_columns
from postroom.export.xlsx_writer import CONTENT_TYPE as XLSX_TYPE
from postroom.export.xlsx_writer import file_chunks, write_xlsx_file
from postroom.export.xml_writer import write_xml
from postroom.runtime import Runtime
from postroom.status import AnnotationStatus

MEDIA_TYPES = {
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
TO_STATUSES = (AnnotationStatus.EXPORTING, AnnotationStatus.EXPORTED)
# Exports are read in bigger pages than lists (the reference's example asks for 1000).
MAX_EXPORT_PAGE_SIZE = 1000
MOVE_BATCH = 500
Pagination = Callable[[Page[Any]], dict[str, Any]]

a = t.annotations.c


def negotiate_format(query: Mapping[str, str], accept: str) -> str:
    raw = query.get("format", "").strip().lower()
    if raw:
        if raw not in MEDIA_TYPES:
            raise BadRequest(f"format: expected one of {', '.join(MEDIA_TYPES)}, got {raw!r}.")
        return raw
    for part in accept.split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media in _ACCEPTED:
            return _ACCEPTED[media]
    return "json"


@dataclass(frozen=True)
class ExportRequest:
    """What the client asked for: the queue, the query (format, filters, columns, CSV dialect,
    `to_status`), its `Accept` header, the page, and whether it POSTed (only a POST moves
    annotations)."""

    queue_id: int
    query: Mapping[str, str]
    accept: str
    page: PageRequest
    post: bool


@dataclass(frozen=True)
class ExportPlan:
    """Everything decided and validated before any byte is sent."""

    fmt: str
    queue_id: int
    schema: list[dict[str, Any]]
    where: sa.ColumnElement[bool]
    page: PageRequest | None  # None: everything
    to_status: AnnotationStatus | None
    columns: list[Column]
    dialect: dict[str, Any]


@dataclass(frozen=True)
class ExportFile:
    """The export as a file: its media type, its attachment name (none for JSON), its size when
    known beforehand (XLSX, written to a temp file first) and its bytes."""

    media_type: str
    file_name: str | None
    size: int | None
    chunks: AsyncIterator[bytes]
    path: Path | None = None  # the temp file, deleted by `discard`

    def discard(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def _to_status(query: Mapping[str, str], who: Actor, *, post: bool) -> AnnotationStatus | None:
    raw = query.get("to_status") or None
    if raw is None:
        return None
    if not post:
        raise BadRequest("to_status: only accepted with POST.")
    if raw not in TO_STATUSES:
        raise BadRequest(f"to_status: expected exporting or exported, got {raw!r}.")
    who.require_annotator()
    return AnnotationStatus(raw)


async def plan_export(rt: Runtime, who: Actor, asked: ExportRequest) -> ExportPlan:
    query, queue_id = asked.query, asked.queue_id
    fmt = negotiate_format(query, asked.accept)
    to_status = _to_status(query, who, post=asked.post)
    async with rt.db.reading() as conn:
        queue = await QUEUES.load(conn, who, queue_id)
        schema = await conn.scalar(
            sa.select(t.schemas.c.content).where(t.schemas.c.id == queue.schema_id)
        )
    filtered = apply_filters(
        sa.select(a.id).where(a.queue_id == queue_id, a.organization_id == who.organization_id),
        query,
        LISTING.filters,
    )
    assert filtered.whereclause is not None
    paged = fmt == "json" or "page" in query or "page_size" in query
    schema = list(schema or [])
    tabular = fmt in ("csv", "xlsx")
    return ExportPlan(
        fmt=fmt,
        queue_id=queue_id,
        schema=schema,
        where=filtered.whereclause,
        page=asked.page if paged else None,
        to_status=to_status,
        columns=resolve_columns(schema, query) if tabular else [],
        dialect=csv_dialect(query) if fmt == "csv" else {},
    )


def _ids_query(plan: ExportPlan) -> sa.Select[Any]:
    stmt = sa.select(a.id).where(plan.where).order_by(a.id)
    if plan.page is not None:
        stmt = stmt.limit(plan.page.size).offset(plan.page.offset)
    return stmt


async def select_annotations(rt: Runtime, who: Actor, plan: ExportPlan) -> tuple[Selection, int]:
    """Which annotations the export holds, and how many match the filters in all."""
    count = sa.select(sa.func.count()).select_from(t.annotations).where(plan.where)
    if plan.to_status is None:
        async with rt.db.reading() as conn:
            total = int((await conn.execute(count)).scalar_one())
            if plan.page is None:
                return FilteredSelection((plan.where,)), total
            ids = array("q", (await conn.execute(_ids_query(plan))).scalars())
        return FixedSelection(ids), total
    async with rt.db.transaction() as conn:
        total = int((await conn.execute(count)).scalar_one())
        ids = array("q", (await conn.execute(_ids_query(plan))).scalars())
        for start in range(0, len(ids), MOVE_BATCH):
            await lifecycle.move_where(
                conn,
                plan.to_status,
                a.id.in_(list(ids[start : start + MOVE_BATCH])),
                actor_id=who.user_id,
                only_from=[AnnotationStatus.CONFIRMED],
            )
    if plan.to_status == AnnotationStatus.EXPORTING:
        rt.jobs_available.set()
    return FixedSelection(ids), total


async def export_queue(
    rt: Runtime, who: Actor, asked: ExportRequest, pagination: Pagination
) -> ExportFile:
    """The export of the queue as the client asked for it (`pagination` renders the envelope's
    pagination of a page: the edge knows the request's URL)."""
    plan = await plan_export(rt, who, asked)
    selection, total = await select_annotations(rt, who, plan)
    # Unpaged, everything is one page.
    shown = plan.page or PageRequest(1, max(total, 1))
    ctx = ExportContext(
        rt.urls,
        plan.schema,
        pagination(Page([], total, shown)),
        rt.settings.export.neutralise_formulas,
    )
    media_type = MEDIA_TYPES[plan.fmt]
    name = None if plan.fmt == "json" else f"queue-{plan.queue_id}-export.{plan.fmt}"
    batches = selection.batches(rt.db)
    if plan.fmt == "xlsx":
        path = await write_xlsx_file(ctx, batches, plan.columns, rt.blobs.tmp_dir)
        return ExportFile(media_type, name, path.stat().st_size, file_chunks(path), path)
    if plan.fmt == "csv":
        chunks = write_csv(ctx, batches, plan.columns, plan.dialect)
    elif plan.fmt == "xml":
        chunks = write_xml(ctx, batches)
    else:
        chunks = write_json(ctx, batches)
    return ExportFile(media_type, name, None, chunks)
