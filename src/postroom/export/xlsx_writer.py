"""XLSX export: the export table (`export.table`) as one worksheet, written by xlsxwriter in
constant-memory mode (each row is flushed to disk as it is written) into a temp file that the
caller then streams and deletes.

xlsxwriter is blocking, so each batch is written in a worker thread. Cells are written
explicitly as strings (never turned into formulas or links) or, for number datapoints whose
value reads as a number, as numbers; text that a spreadsheet would take for a formula once
re-saved or copied carries a leading `'` (`export.table.cell`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import xlsxwriter
from xlsxwriter.worksheet import Worksheet

from postroom.errors import BadRequest
from postroom.export.records import ExportContext
from postroom.export.table import Column, headers, table_rows

MAX_ROWS = 1_048_576  # the format's limit per worksheet
CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _write_batch(
    ctx: ExportContext,
    sheet: Worksheet,
    columns: Sequence[Column],
    batch: Sequence[Any],
    first: int,
) -> int:
    """Write one batch of annotations from row `first` on; returns the next free row."""
    rows = [values for row in batch for values in table_rows(ctx, columns, row)]
    if first + len(rows) > MAX_ROWS:
        raise BadRequest(
            f"The export has more than {MAX_ROWS - 1} rows, the XLSX limit; "
            "export it in pages (page, page_size) or as CSV."
        )
    for offset, values in enumerate(rows):
        line = first + offset
        for col, (column, value) in enumerate(zip(columns, values, strict=True)):
            if value == "":
                continue
            if column.is_number:
                try:
                    number = float(value)
                except ValueError:
                    number = math.nan
                if math.isfinite(number):
                    sheet.write_number(line, col, number)
                    continue
            sheet.write_string(line, col, value)
    return first + len(rows)


def _open(
    ctx: ExportContext, path: Path, tmp_dir: Path, columns: Sequence[Column]
) -> tuple[Any, Worksheet]:
    workbook = xlsxwriter.Workbook(
        str(path),
        {
            "constant_memory": True,
            "tmpdir": str(tmp_dir),
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
        },
    )
    sheet = workbook.add_worksheet("export")
    bold = workbook.add_format({"bold": True})
    for col, header in enumerate(headers(ctx, columns)):
        sheet.write_string(0, col, header, bold)
    return workbook, sheet


async def write_xlsx_file(
    ctx: ExportContext,
    batches: AsyncIterator[Sequence[Any]],
    columns: Sequence[Column],
    tmp_dir: Path,
) -> Path:
    """Write the workbook to a new temp file in `tmp_dir` and return its path (the caller
    deletes it). 400 when the rows would not fit in one worksheet."""
    # ".part": a crash leaves it where start-up sweeps temp files.
    path = tmp_dir / f"export-{secrets.token_hex(8)}.xlsx.part"
    workbook, sheet = await asyncio.to_thread(_open, ctx, path, tmp_dir, columns)
    try:
        line = 1
        async for batch in batches:
            line = await asyncio.to_thread(_write_batch, ctx, sheet, columns, batch, line)
        await asyncio.to_thread(workbook.close)
    except BaseException:
        await asyncio.to_thread(_discard, workbook, path)
        raise
    return path


def _discard(workbook: Any, path: Path) -> None:
    with contextlib.suppress(Exception):  # already broken: only the file matters now
        workbook.close()
    path.unlink(missing_ok=True)


async def file_chunks(path: Path, chunk_size: int = 256 * 1024) -> AsyncIterator[bytes]:
    import aiofiles

    async with aiofiles.open(path, "rb") as f:
        while chunk := await f.read(chunk_size):
            yield chunk
