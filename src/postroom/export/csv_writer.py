"""CSV export: the export table (`export.table`) in the dialect the query asks for.

`delimiter`, `quote_char`, `escape_char` (one character each) and `quoting` (quote_minimal,
quote_none, quote_all, quote_non_numeric; quote_none needs `escape_char`). With
quote_non_numeric, values of number datapoints that read as numbers are left unquoted, written
exactly as stored.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from postroom.errors import BadRequest
from postroom.export.records import ExportContext
from postroom.export.table import Column, headers, table_rows

QUOTING = {
    "quote_minimal": csv.QUOTE_MINIMAL,
    "quote_none": csv.QUOTE_NONE,
    "quote_all": csv.QUOTE_ALL,
    "quote_non_numeric": csv.QUOTE_NONNUMERIC,
}


# No delimiter, quote_char or escape_char may be a line break (it would split rows) or NUL; nor
# may the delimiter be a quote (fields would not read back).
_NEVER = frozenset("\r\n\x00\u2028\u2029\x0b\x0c\x1c\x1d\x1e\x85")
_QUOTES = frozenset("\"'")


class _Number(float):
    """A float to the csv module (so QUOTE_NONNUMERIC leaves it bare) that prints as written."""

    text: str

    def __new__(cls, text: str) -> _Number:
        number = super().__new__(cls, text)
        number.text = text
        return number

    def __str__(self) -> str:
        return self.text


def _one_char(query: Mapping[str, str], name: str, default: str | None) -> str | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if len(raw) != 1:
        raise BadRequest(f"{name}: expected exactly one character, got {raw!r}.")
    return raw


def csv_dialect(query: Mapping[str, str]) -> dict[str, Any]:
    """csv.writer keyword arguments from the query; 400 naming the parameter when invalid."""
    quoting_name = query.get("quoting") or "quote_minimal"
    if quoting_name not in QUOTING:
        raise BadRequest(f"quoting: expected one of {', '.join(QUOTING)}, got {quoting_name!r}.")
    dialect: dict[str, Any] = {
        "delimiter": _one_char(query, "delimiter", ","),
        "quotechar": _one_char(query, "quote_char", '"'),
        "escapechar": _one_char(query, "escape_char", None),
        "quoting": QUOTING[quoting_name],
        "lineterminator": "\r\n",
    }
    if dialect["quoting"] == csv.QUOTE_NONE and dialect["escapechar"] is None:
        raise BadRequest("escape_char: required when quoting is quote_none.")
    try:
        csv.writer(io.StringIO(), **dialect)
    except (TypeError, csv.Error) as error:
        raise BadRequest(f"delimiter/quote_char/escape_char: {error}.") from None
    if dialect["delimiter"] in (dialect["quotechar"], dialect["escapechar"]):
        raise BadRequest("delimiter: must differ from quote_char and escape_char.")
    if dialect["delimiter"] in _NEVER | _QUOTES:
        raise BadRequest(
            f"delimiter: may not be a line break, a quote or NUL, got {dialect['delimiter']!r}."
        )
    for name, key in (("quote_char", "quotechar"), ("escape_char", "escapechar")):
        if dialect[key] is not None and dialect[key] in _NEVER:
            raise BadRequest(f"{name}: may not be a line break or NUL, got {dialect[key]!r}.")
    return dialect


def _numeric(columns: Sequence[Column], values: list[str]) -> list[Any]:
    out: list[Any] = []
    for column, value in zip(columns, values, strict=True):
        if column.is_number and value:
            try:
                out.append(_Number(value))
                continue
            except ValueError:
                pass
        out.append(value)
    return out


def render_rows(
    ctx: ExportContext,
    rows: Sequence[Any],
    columns: Sequence[Column],
    dialect: Mapping[str, Any],
    header: bool = False,
) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, **dialect)
    numbers = dialect["quoting"] == csv.QUOTE_NONNUMERIC
    if header:
        writer.writerow(headers(ctx, columns))
    for row in rows:
        for values in table_rows(ctx, columns, row):
            writer.writerow(_numeric(columns, values) if numbers else values)
    return buffer.getvalue().encode("utf-8")


async def write_csv(
    ctx: ExportContext,
    batches: AsyncIterator[Sequence[Any]],
    columns: Sequence[Column],
    dialect: Mapping[str, Any],
) -> AsyncIterator[bytes]:
    yield render_rows(ctx, [], columns, dialect, header=True)
    async for rows in batches:
        # Decoding and rendering are CPU work: off the event loop.
        yield await asyncio.to_thread(render_rows, ctx, rows, columns, dialect)
