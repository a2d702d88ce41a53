"""XML export, the shape of the reference (queues_export.xsd):

    <export><results><annotation url="…"><status/><arrived_at/><exported_at/>
      <document url="…"><file_name/><file/></document><modifier/><schema url="…"/><metadata/>
      <content><section schema_id="…"><datapoint schema_id="…" type="…">value</datapoint>
      <multivalue schema_id="…"><tuple schema_id="…">…</tuple></multivalue></section></content>
    </annotation>…</results><pagination><next/><previous/><total/><total_pages/></pagination></export>

Each annotation is written as escaped text (several times faster than building ElementTrees).
Characters XML 1.0 cannot carry (most C0 controls) are dropped rather than producing a file no
parser accepts.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from functools import lru_cache
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from postroom.clock import iso
from postroom.export.records import ExportContext, decoded
from postroom.export.tree import export_content, index_content

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(value: object) -> str:
    return _NOT_XML.sub("", str(value))


@lru_cache(maxsize=4096)
def _quoted(value: str) -> str:
    # Schema ids and types repeat on every annotation: escape each once.
    return quoteattr(_clean(value))


def _attrs(attrs: Mapping[str, object]) -> str:
    return "".join(f" {name}={_quoted(str(value))}" for name, value in attrs.items())


def _leaf(tag: str, text: object | None, **attrs: object) -> str:
    if text is None or text == "":
        return f"<{tag}{_attrs(attrs)}/>"
    return f"<{tag}{_attrs(attrs)}>{escape(_clean(text))}</{tag}>"


def _content_node(parts: list[str], node: Mapping[str, Any]) -> None:
    category = node["category"]
    attrs: dict[str, object] = {"schema_id": node.get("schema_id")}
    if category == "datapoint":
        attrs["type"] = node.get("type")
        if node.get("rir_confidence") is not None:
            attrs["rir_confidence"] = node["rir_confidence"]
        parts.append(_leaf("datapoint", node.get("value"), **attrs))
        return
    parts.append(f"<{category}{_attrs(attrs)}>")
    for child in node.get("children", []):
        _content_node(parts, child)
    parts.append(f"</{category}>")


def annotation_xml(ctx: ExportContext, row: Any, parts: list[str]) -> None:
    """Append one `<annotation>` element (as text, escaped) to `parts`."""
    modifier = ctx.modifier_url(row)
    # Metadata is free JSON (keys need not be XML names): carried as JSON text.
    metadata = decoded(row.metadata)
    parts += [
        f"<annotation{_attrs({'url': ctx.annotation_url(row)})}>",
        _leaf("status", row.status),
        _leaf("arrived_at", iso(row.arrived_at)),
        _leaf("exported_at", iso(row.exported_at)),
        f"<document{_attrs({'url': ctx.document_url(row)})}>",
        _leaf("file_name", row.file_name),
        _leaf("file", ctx.file_url(row)),
        "</document>",
        _leaf("modifier", None) if modifier is None else _leaf("modifier", None, url=modifier),
        _leaf("schema", None, url=ctx.schema_url(row)),
        _leaf("metadata", json.dumps(metadata, ensure_ascii=False) if metadata else None),
        "<content>",
    ]
    for section in export_content(ctx.schema, index_content(row.content)):
        _content_node(parts, section)
    parts.append("</content></annotation>")


def _pagination(pagination: Mapping[str, Any]) -> str:
    keys = ("next", "previous", "total", "total_pages")
    return "<pagination>" + "".join(_leaf(k, pagination.get(k)) for k in keys) + "</pagination>"


def render_annotations(ctx: ExportContext, rows: Sequence[Any]) -> bytes:
    parts: list[str] = []
    for row in rows:
        annotation_xml(ctx, row, parts)
    return "".join(parts).encode("utf-8")


async def write_xml(
    ctx: ExportContext, batches: AsyncIterator[Sequence[Any]]
) -> AsyncIterator[bytes]:
    yield b'<?xml version="1.0" encoding="utf-8"?>\n<export><results>'
    async for rows in batches:
        # Decoding and rendering are CPU work: off the event loop.
        yield await asyncio.to_thread(render_annotations, ctx, rows)
    yield b"</results>" + _pagination(ctx.pagination).encode("utf-8") + b"</export>\n"
