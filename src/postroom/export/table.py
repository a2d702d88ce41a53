"""The export table shared by CSV and XLSX: its columns and one row per annotation or line item.

Columns are schema datapoint ids (headed by their label) and meta-columns (headed by their
name): by default every exportable datapoint; `columns` replaces that list, `prepend_columns`
and `append_columns` add around it. When a chosen column belongs to a table (a multivalue), an
annotation takes one row per line item, its header fields repeated on each.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from postroom.clock import iso
from postroom.errors import BadRequest
from postroom.export.records import ExportContext
from postroom.export.tree import FieldSpec, export_fields, index_content, iter_table_values

# First characters that make a spreadsheet read a cell as a formula.
FORMULA_STARTS = frozenset("=+-@\t\r")

MetaGetter = Callable[[ExportContext, Any], str]

META_COLUMNS: Mapping[str, MetaGetter] = {
    "meta_arrived_at": lambda ctx, row: iso(row.arrived_at) or "",
    "meta_file": lambda ctx, row: ctx.file_url(row),
    "meta_file_name": lambda ctx, row: row.file_name or "",
    "meta_status": lambda ctx, row: row.status,
    "meta_url": lambda ctx, row: ctx.annotation_url(row),
    "meta_automated": lambda ctx, row: "true" if row.automated else "false",
    "meta_modified_at": lambda ctx, row: iso(row.modified_at) or "",
    "meta_assigned_at": lambda ctx, row: iso(row.assigned_at) or "",
}


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    field: FieldSpec | None  # None: a meta-column

    @property
    def is_number(self) -> bool:
        return self.field is not None and self.field.type == "number"


def _names(raw: str | None) -> list[str]:
    return [part.strip() for part in (raw or "").split(",") if part.strip()]


def resolve_columns(schema: Sequence[Mapping[str, Any]], query: Mapping[str, str]) -> list[Column]:
    """The columns asked for by `columns` / `prepend_columns` / `append_columns`; 400 naming
    the parameter and the unknown column otherwise."""
    fields = {spec.id: spec for spec in export_fields(schema)}

    def column(name: str, param: str) -> Column:
        if name in META_COLUMNS:
            return Column(name, name, None)
        spec = fields.get(name)
        if spec is None:
            raise BadRequest(
                f"{param}: unknown column {name!r} (an exportable datapoint id of the queue "
                f"schema or one of {', '.join(META_COLUMNS)})."
            )
        return Column(name, spec.label, spec)

    middle = _names(query.get("columns"))
    chosen = (
        [column(n, "columns") for n in middle]
        if middle
        else [Column(spec.id, spec.label, spec) for spec in fields.values()]
    )
    return [
        *(column(n, "prepend_columns") for n in _names(query.get("prepend_columns"))),
        *chosen,
        *(column(n, "append_columns") for n in _names(query.get("append_columns"))),
    ]


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def cell(ctx: ExportContext, column: Column | None, value: str) -> str:
    """`value` as a spreadsheet may safely read it: a text starting with `=`, `+`, `-`, `@`, a
    tab or a carriage return would run as a formula, so it gets a leading `'` (OWASP's rule for
    CSV injection) unless `neutralise_formulas` is off. A number datapoint's number is a number."""
    if not ctx.neutralise_formulas or not value or value[0] not in FORMULA_STARTS:
        return value
    if column is not None and column.is_number and _is_number(value):
        return value
    return "'" + value


def headers(ctx: ExportContext, columns: Sequence[Column]) -> list[str]:
    return [cell(ctx, None, c.header) for c in columns]


def table_rows(ctx: ExportContext, columns: Sequence[Column], row: Any) -> Iterator[list[str]]:
    """The output rows of one annotation (several when it has line items in chosen columns)."""
    tables = list(dict.fromkeys(c.field.table for c in columns if c.field and c.field.table))
    index = index_content(row.content)
    metas = [META_COLUMNS[c.key](ctx, row) if c.field is None else "" for c in columns]
    for values in iter_table_values(index, [c.field for c in columns], tables):
        yield [
            cell(ctx, column, meta if value is None else value)
            for column, meta, value in zip(columns, metas, values, strict=True)
        ]
