"""XML export, the shape of the reference (queues_export.xsd):

    <export><results><annotation url="…"><status/><arrived_at/><exported_at/>
      <document url="…"><file_name/><file/></document><modifier/><schema url="…"/><metadata/>
      <content><section schema_id="…"><datapoint schema_id="…" type="…">value</datapoint>
      <multivalue schema_id="…"><tuple schema_id="…">…</tuple></multivalue></section></content>
    </annotation>…</results><pagination><next/><previous/><total/><total_pages/></pagination></export>

Each annotation is built as a small ElementTree and serialised on its own. Characters XML 1.0
cannot carry (most C0 controls) are dropped rather than producing a file no parser accepts.
"""

from __future__ import annotations

import asyncio
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from postroom.clock import iso
from postroom.export.records import ExportContext, decoded
from postroom.export.tree import export_content, index_content

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(value: object) -> str:
    return _NOT_XML.sub("", str(value))


def _leaf(parent: ET.Element, tag: str, text: object | None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: _clean(v) for k, v in attrs.items()})
    if text is not None and text != "":
        element.text = _clean(text)
    return element


def _content_node(parent: ET.Element, node: Mapping[str, Any]) -> None:
    category = node["category"]
    attrs = {"schema_id": str(node.get("schema_id"))}
    if category == "datapoint":
        attrs["type"] = str(node.get("type"))
        if node.get("rir_confidence") is not None:
            attrs["rir_confidence"] = str(node["rir_confidence"])
        _leaf(parent, "datapoint", node.get("value"), **attrs)
        return
    element = ET.SubElement(parent, category, attrs)
    for child in node.get("children", []):
        _content_node(element, child)


def annotation_element(ctx: ExportContext, row: Any) -> ET.Element:
    root = ET.Element("annotation", {"url": ctx.annotation_url(row)})
    _leaf(root, "status", row.status)
    _leaf(root, "arrived_at", iso(row.arrived_at))
    _leaf(root, "exported_at", iso(row.exported_at))
    document = ET.SubElement(root, "document", {"url": ctx.document_url(row)})
    _leaf(document, "file_name", row.file_name)
    _leaf(document, "file", ctx.file_url(row))
    modifier = ctx.modifier_url(row)
    if modifier is None:
        ET.SubElement(root, "modifier")
    else:
        ET.SubElement(root, "modifier", {"url": modifier})
    ET.SubElement(root, "schema", {"url": ctx.schema_url(row)})
    # Metadata is free JSON (keys need not be XML names): carried as JSON text.
    metadata = decoded(row.metadata)
    _leaf(root, "metadata", json.dumps(metadata, ensure_ascii=False) if metadata else None)
    content = ET.SubElement(root, "content")
    for section in export_content(ctx.schema, index_content(row.content)):
        _content_node(content, section)
    return root


def _pagination(pagination: Mapping[str, Any]) -> bytes:
    element = ET.Element("pagination")
    for key in ("next", "previous", "total", "total_pages"):
        _leaf(element, key, pagination.get(key))
    return ET.tostring(element, encoding="utf-8", xml_declaration=False)


def render_annotations(ctx: ExportContext, rows: Sequence[Any]) -> bytes:
    return b"".join(
        ET.tostring(annotation_element(ctx, row), encoding="utf-8", xml_declaration=False)
        for row in rows
    )


async def write_xml(
    ctx: ExportContext, batches: AsyncIterator[Sequence[Any]]
) -> AsyncIterator[bytes]:
    yield b'<?xml version="1.0" encoding="utf-8"?>\n<export><results>'
    async for rows in batches:
        # Decoding and rendering are CPU work: off the event loop.
        yield await asyncio.to_thread(render_annotations, ctx, rows)
    yield b"</results>" + _pagination(ctx.pagination) + b"</export>\n"
