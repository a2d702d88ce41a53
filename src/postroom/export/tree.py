"""Reading annotation content against its schema: the exported fields, values and line items.

Export walks the queue schema (so every annotation yields the same shape, even one whose
content is still empty) and takes each datapoint's value from the annotation's content, found
by `schema_id`. Datapoints with `can_export: false` and buttons (which hold no value) are left
out, as the reference says.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Node = Mapping[str, Any]


@dataclass(frozen=True)
class FieldSpec:
    """One exportable datapoint of the schema; `table` is its multivalue's id when it has one."""

    id: str
    label: str
    type: str
    table: str | None


def _exportable(node: Node) -> bool:
    return node.get("can_export", True) is not False and node.get("type") != "button"


def _children(node: Node) -> list[Node]:
    children = node.get("children")
    if isinstance(children, dict):
        return [children]
    return [c for c in children or [] if isinstance(c, dict)]


def export_fields(schema: Sequence[Node]) -> list[FieldSpec]:
    """Every exportable datapoint in schema order, table columns with their table."""
    found: list[FieldSpec] = []

    def walk(node: Node, table: str | None) -> None:
        category = node.get("category")
        if category == "datapoint":
            if _exportable(node):
                label = node.get("label") or node.get("id")
                found.append(
                    FieldSpec(str(node["id"]), str(label), str(node.get("type") or "string"), table)
                )
            return
        if category == "multivalue":
            table = str(node.get("id"))
        for child in _children(node):
            walk(child, table)

    for section in schema:
        walk(section, None)
    return found


@dataclass
class ContentIndex:
    """An annotation's values: header datapoints by schema id, and the rows of each multivalue."""

    header: dict[str, Node] = field(default_factory=dict)
    tables: dict[str, list[dict[str, Node]]] = field(default_factory=dict)

    def value(self, field_id: str) -> str:
        return _text(self.header.get(field_id))

    def rows(self, table: str) -> list[dict[str, Node]]:
        return self.tables.get(table, [])


def _text(content: Node | None) -> str:
    if not content:
        return ""
    value = content.get("value")
    return "" if value is None else str(value)


def _content_of(node: Node) -> Node:
    content = node.get("content")
    return content if isinstance(content, dict) else {}


def index_content(content: Any) -> ContentIndex:
    """Index an annotation's content (the tree, or its JSON text)."""
    if isinstance(content, str):
        content = json.loads(content)
    index = ContentIndex()
    if not isinstance(content, list):
        return index

    def walk(node: Node) -> None:
        category = node.get("category")
        if category == "datapoint":
            index.header[str(node.get("schema_id"))] = _content_of(node)
        elif category == "multivalue":
            rows = index.tables.setdefault(str(node.get("schema_id")), [])
            for item in _children(node):
                if item.get("category") == "tuple":
                    rows.append(
                        {str(dp.get("schema_id")): _content_of(dp) for dp in _children(item)}
                    )
                else:
                    rows.append({str(item.get("schema_id")): _content_of(item)})
        else:
            for child in _children(node):
                walk(child)

    for section in content:
        if isinstance(section, dict):
            walk(section)
    return index


def _datapoint(node: Node, content: Node | None) -> dict[str, Any]:
    content = content or {}
    return {
        "category": "datapoint",
        "schema_id": node.get("id"),
        "value": _text(content),
        "type": node.get("type") or "string",
        "rir_confidence": content.get("rir_confidence"),
    }


def export_content(schema: Sequence[Node], index: ContentIndex) -> list[dict[str, Any]]:
    """The `content` of an exported annotation: sections → datapoints, multivalues → tuples."""

    def child(node: Node, values: Mapping[str, Node]) -> dict[str, Any] | None:
        category = node.get("category")
        if category == "datapoint":
            return _datapoint(node, values.get(str(node.get("id")))) if _exportable(node) else None
        if category == "multivalue":
            return multivalue(node)
        if category == "tuple":
            return container(node, "tuple", values)
        return None

    def container(node: Node, category: str, values: Mapping[str, Node]) -> dict[str, Any]:
        kids = [c for c in (child(k, values) for k in _children(node)) if c is not None]
        return {"category": category, "schema_id": node.get("id"), "children": kids}

    def multivalue(node: Node) -> dict[str, Any]:
        templates = _children(node)
        items: list[dict[str, Any]] = []
        for row in index.rows(str(node.get("id"))):
            for template in templates:
                item = child(template, row)
                if item is not None:
                    items.append(item)
        return {"category": "multivalue", "schema_id": node.get("id"), "children": items}

    return [container(section, "section", index.header) for section in schema]


def line_count(index: ContentIndex, tables: Sequence[str]) -> int:
    """How many CSV/XLSX rows an annotation takes: its longest table among `tables`, at least 1."""
    return max([len(index.rows(table)) for table in tables] + [1])


def iter_table_values(
    index: ContentIndex, fields: Sequence[FieldSpec | None], tables: Sequence[str]
) -> Iterator[list[str | None]]:
    """Per output row, the value of each field (None for a non-field column)."""
    for line in range(line_count(index, tables)):
        values: list[str | None] = []
        for spec in fields:
            if spec is None:
                values.append(None)
            elif spec.table is None:
                values.append(index.value(spec.id))
            else:
                rows = index.rows(spec.table)
                values.append(_text(rows[line].get(spec.id)) if line < len(rows) else "")
        yield values
