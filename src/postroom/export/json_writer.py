"""JSON export: the list envelope with each annotation in the documented export shape.

`{"pagination": {...}, "results": [{"url", "status", "arrived_at", "exported_at",
"document": {"url", "file_name", "file"}, "modifier", "schema": {"url"}, "metadata",
"content": [sections...]}]}`, written one batch at a time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from postroom.clock import iso
from postroom.export.records import ExportContext, decoded
from postroom.export.tree import export_content, index_content


def export_item(ctx: ExportContext, row: Any) -> dict[str, Any]:
    return {
        "url": ctx.annotation_url(row),
        "status": row.status,
        "arrived_at": iso(row.arrived_at),
        "exported_at": iso(row.exported_at),
        "document": {
            "url": ctx.document_url(row),
            "file_name": row.file_name,
            "file": ctx.file_url(row),
        },
        "modifier": ctx.modifier_url(row),
        "schema": {"url": ctx.schema_url(row)},
        "metadata": decoded(row.metadata) or {},
        "content": export_content(ctx.schema, index_content(row.content)),
    }


def render_items(ctx: ExportContext, rows: Sequence[Any], first: bool) -> bytes:
    """One batch of `results` items, comma-separated (led by a comma unless `first`)."""
    items = ", ".join(json.dumps(export_item(ctx, row), ensure_ascii=False) for row in rows)
    return (items if first else ", " + items).encode("utf-8")


async def write_json(
    ctx: ExportContext, batches: AsyncIterator[Sequence[Any]]
) -> AsyncIterator[bytes]:
    yield b'{"pagination": ' + json.dumps(ctx.pagination).encode() + b', "results": ['
    first = True
    async for rows in batches:
        if rows:
            # Decoding and rendering are CPU work: off the event loop.
            yield await asyncio.to_thread(render_items, ctx, rows, first)
            first = False
    yield b"]}"
