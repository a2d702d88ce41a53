"""Which annotations an export holds, fetched in batches so memory stays flat at any size.

A `FilteredSelection` walks the matching annotations by id (keyset, one short read per batch:
no connection is held while the response is written to a slow client). A `FixedSelection` reads
a list of ids decided beforehand — a page, or the annotations an export just moved with
`to_status` — kept in a compact array.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa

from postroom.db import tables as t
from postroom.db.engine import Database
from postroom.urls import Urls

BATCH = 500

a = t.annotations.c
d = t.documents.c

RECORD_COLUMNS = (
    a.id,
    a.status,
    a.arrived_at,
    a.exported_at,
    a.modified_at,
    a.assigned_at,
    a.automated,
    a.document_id,
    a.schema_id,
    a.modifier_id,
    # As JSON text: decoding is most of an export's CPU, and the writers do it in a thread
    # (`decoded`) instead of on the event loop, where SQLAlchemy would.
    sa.cast(a.metadata, sa.Text).label("metadata"),
    sa.cast(a.content, sa.Text).label("content"),
    d.original_file_name.label("file_name"),
)


def decoded(value: str | None) -> Any:
    """A JSON column read as text by `records_query`, decoded (None for SQL NULL)."""
    return None if value is None else json.loads(value)


def records_query() -> sa.Select[Any]:
    return sa.select(*RECORD_COLUMNS).join(t.documents, d.id == a.document_id)


class Selection(Protocol):
    def batches(self, db: Database) -> AsyncIterator[Sequence[Any]]: ...


@dataclass(frozen=True)
class FilteredSelection:
    where: tuple[sa.ColumnElement[bool], ...]
    batch: int = BATCH

    async def batches(self, db: Database) -> AsyncIterator[Sequence[Any]]:
        last = 0
        while True:
            stmt = records_query().where(*self.where, a.id > last).order_by(a.id).limit(self.batch)
            async with db.reading() as conn:
                rows = (await conn.execute(stmt)).all()
            if not rows:
                return
            yield rows
            if len(rows) < self.batch:
                return
            last = rows[-1].id


@dataclass(frozen=True)
class FixedSelection:
    ids: array[int] = field(default_factory=lambda: array("q"))
    batch: int = BATCH

    @classmethod
    def of(cls, ids: Iterable[int]) -> FixedSelection:
        return cls(array("q", ids))

    async def batches(self, db: Database) -> AsyncIterator[Sequence[Any]]:
        for start in range(0, len(self.ids), self.batch):
            chunk = list(self.ids[start : start + self.batch])
            async with db.reading() as conn:
                rows = (await conn.execute(records_query().where(a.id.in_(chunk)))).all()
            by_id = {row.id: row for row in rows}
            # Keep the decided order; an id gone meanwhile (queue deleted) is skipped.
            yield [by_id[i] for i in chunk if i in by_id]


@dataclass(frozen=True)
class ExportContext:
    """What every writer needs besides the records: URLs, the queue schema, the pagination."""

    urls: Urls
    schema: list[dict[str, Any]]
    pagination: dict[str, Any]
    neutralise_formulas: bool = True  # CSV/XLSX cells (`export.table.cell`)

    def annotation_url(self, row: Any) -> str:
        return self.urls.to("annotations", row.id)

    def document_url(self, row: Any) -> str:
        return self.urls.to("documents", row.document_id)

    def file_url(self, row: Any) -> str:
        return self.urls.to("documents", row.document_id) + "/content"

    def modifier_url(self, row: Any) -> str | None:
        return self.urls.of("users", row.modifier_id)

    def schema_url(self, row: Any) -> str:
        return self.urls.to("schemas", row.schema_id)
