"""`GET` and `POST /queues/{id}/export`: a queue's annotations as JSON, CSV, XML or XLSX
(`export.queue_export`), streamed in chunks as batches are read, so memory stays flat whatever
the size. HTTP Basic credentials are accepted too (spreadsheets and scripts fetch exports)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from postroom.api.pagination import page_request, pagination
from postroom.api.routing import Call, Download, Param, Routes
from postroom.domain.annotations import LISTING
from postroom.domain.listing import MAX_PAGE_NUMBER, any_case, comma_list
from postroom.errors import AccessForbidden, NotFound
from postroom.export import queue_export
from postroom.export.queue_export import MAX_EXPORT_PAGE_SIZE, MEDIA_TYPES, ExportRequest
from postroom.export.table import META_COLUMNS

log = logging.getLogger("postroom.export")

FLUSH_BYTES = 64 * 1024
PATH = "/queues/{id}/export"
_FORMATS = f"^\\s*(?:{any_case(*MEDIA_TYPES)})?\\s*$"
# What the document promises (the server takes more: any datapoint id as a column, any
# delimiter but a line break or a quote, quote_none with an escape_char).
_COLUMNS = {"type": "string", "pattern": comma_list("|".join(META_COLUMNS))}
QUERY = (
    Param(
        "format",
        {"type": "string", "pattern": _FORMATS},
        "json, csv, xml or xlsx (else from Accept; default json).",
    ),
    Param(
        "page",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_NUMBER},
        "Page number (JSON is always paged).",
    ),
    Param(
        "page_size",
        {"type": "integer", "minimum": 1, "maximum": MAX_EXPORT_PAGE_SIZE},
        "Page size (default 20).",
    ),
    Param("columns", _COLUMNS, "CSV/XLSX: the datapoint ids and meta columns, in order."),
    Param("prepend_columns", _COLUMNS, "CSV/XLSX: columns before the others."),
    Param("append_columns", _COLUMNS, "CSV/XLSX: columns after the others."),
    Param(
        "delimiter",
        {"type": "string", "pattern": "^[,;|\t ]?$"},
        "CSV: one character (default ,); not a line break, a quote or NUL.",
    ),
    Param(
        "quote_char", {"type": "string", "pattern": "^[\"']?$"}, 'CSV: one character (default ").'
    ),
    Param("escape_char", {"type": "string", "pattern": "^\\\\?$"}, "CSV: one character."),
    Param(
        "quoting",
        {"type": "string", "enum": ["", "quote_minimal", "quote_all", "quote_non_numeric"]},
        "CSV: quote_minimal, quote_none (with an escape_char), quote_all, quote_non_numeric.",
    ),
)
TO_STATUS = Param(
    "to_status",
    {"type": "string", "enum": ["", "exporting", "exported"]},
    "Move the confirmed ones to exporting or exported.",
)
FILTERS = tuple(
    Param(f.param, dict(f.value_schema()), "Filter, as on GET /annotations.")
    for f in LISTING.filters
)

routes = Routes()


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


async def _export(call: Call, *, post: bool) -> web.StreamResponse:
    request = call.request
    asked = ExportRequest(
        queue_id=call.id,
        query=call.query,
        accept=request.headers.get("Accept", ""),
        page=page_request(call.query, most=MAX_EXPORT_PAGE_SIZE),
        post=post,
    )
    base = call.rt.urls.base
    export = await queue_export.export_queue(
        call.rt, call.actor, asked, lambda page: pagination(request, base, page)
    )
    response = web.StreamResponse(headers={"Content-Type": export.media_type})
    if export.file_name is not None:
        response.headers["Content-Disposition"] = f'attachment; filename="{export.file_name}"'
    try:
        if export.size is None:
            response.enable_chunked_encoding()
        else:
            response.content_length = export.size
        await _stream(request, response, export.chunks)
    finally:
        export.discard()
    return response


DOWNLOAD = Download(tuple(MEDIA_TYPES.values()), "The export.")
ERRORS = (NotFound, AccessForbidden)


# No implicit HEAD: it would build a whole export only to drop it.
@routes.get(PATH, auth="basic", head=False, query=QUERY + FILTERS, response=DOWNLOAD, errors=ERRORS)
async def export_queue(call: Call) -> web.StreamResponse:
    """Export a queue's annotations (JSON, CSV, XML or XLSX)."""
    return await _export(call, post=False)


@routes.post(
    PATH, auth="basic", query=(*QUERY, TO_STATUS, *FILTERS), response=DOWNLOAD, errors=ERRORS
)
async def export_queue_moving(call: Call) -> web.StreamResponse:
    """Export a queue's annotations; `to_status` moves the confirmed ones on."""
    return await _export(call, post=True)
