"""Annotation content: the Rossum annotation-data tree built from a queue schema and intake values.

The pipeline builds it once per import: sections → datapoints / multivalues → tuples, every node
with a stable `id` and `url`. A datapoint's initial value is the first of its `rir_field_names`
present in the intake values (`upload:<key>`, `email_header:<name>`, `email_body:<name>`), else
its schema `default_value`. Number and date values get a `normalized_value` (JSON number text,
ISO date) when they can be read in the datapoint's `format`.

Node ids are `annotation_id * NODE_ID_SPAN + ordinal`: unique across annotations without a shared
sequence, and the same every time the same annotation is built (safe when a job is retried).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

NODE_ID_SPAN = 1_000_000
MAX_VALUE_CHARS = 1500  # the reference's limit on a datapoint value


class NodeIds:
    """Hands out the node ids of one annotation in schema order."""

    def __init__(self, annotation_id: int) -> None:
        self._next = annotation_id * NODE_ID_SPAN

    def __iter__(self) -> Iterator[int]:
        return self

    def __next__(self) -> int:
        self._next += 1
        return self._next


def build_content(
    schema_content: list[dict[str, Any]],
    rir_values: Mapping[str, Any],
    *,
    annotation_id: int,
    annotation_url: str,
) -> list[dict[str, Any]]:
    """The content sections of a new annotation, datapoints initialised from `rir_values`."""
    builder = _Builder(rir_values, NodeIds(annotation_id), annotation_url + "/content")
    return [builder.section(node) for node in schema_content if isinstance(node, dict)]


class _Builder:
    def __init__(self, rir_values: Mapping[str, Any], ids: NodeIds, base_url: str) -> None:
        self.rir_values = rir_values
        self.ids = ids
        self.base_url = base_url

    def _node(self, schema: Mapping[str, Any], category: str) -> dict[str, Any]:
        node_id = next(self.ids)
        return {
            "id": node_id,
            "url": f"{self.base_url}/{node_id}",
            "schema_id": schema.get("id"),
            "category": category,
        }

    def section(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        node = self._node(schema, "section")
        node["children"] = [
            self.child(c) for c in schema.get("children") or [] if isinstance(c, dict)
        ]
        return node

    def child(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        category = schema.get("category")
        if category == "multivalue":
            return self.multivalue(schema)
        if category == "tuple":
            return self.tuple(schema)
        return self.datapoint(schema)

    def multivalue(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        node = self._node(schema, "multivalue")
        node.update(time_spent=0, time_spent_overall=0, hidden=bool(schema.get("hidden", False)))
        row_schema = schema.get("children")
        rows = _int_or_zero(schema.get("min_occurrences"))
        node["children"] = (
            [self.child(row_schema) for _ in range(rows)] if isinstance(row_schema, dict) else []
        )
        return node

    def tuple(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        node = self._node(schema, "tuple")
        node["hidden"] = bool(schema.get("hidden", False))
        node["children"] = [
            self.datapoint(c) for c in schema.get("children") or [] if isinstance(c, dict)
        ]
        return node

    def datapoint(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        node = self._node(schema, "datapoint")
        hidden = bool(schema.get("hidden", False))
        if schema.get("type") == "button":
            node.update(content=None, validation_sources=["NA"])
        else:
            node.update(content=datapoint_content(schema, self.initial_value(schema)))
            node["validation_sources"] = []
        node.update(time_spent=0, time_spent_overall=0, hidden=hidden)
        return node

    def initial_value(self, schema: Mapping[str, Any]) -> str:
        for name in schema.get("rir_field_names") or []:
            if isinstance(name, str) and name in self.rir_values:
                value = self.rir_values[name]
                if value is not None:
                    return _as_text(value)
        default = schema.get("default_value")
        return "" if default is None else _as_text(default)


def datapoint_content(schema: Mapping[str, Any], value: str) -> dict[str, Any]:
    """The `content` object of one datapoint holding `value` (no position: not extracted)."""
    return {
        "value": value,
        "normalized_value": normalize(schema, value),
        "page": None,
        "position": None,
        "rir_text": None,
        "rir_position": None,
        "rir_confidence": None,
        "connector_text": None,
    }


def normalize(schema: Mapping[str, Any], value: str) -> str | None:
    """`normalized_value` per datapoint type: numbers as JSON number text, dates as ISO dates;
    other types keep the value. None when the value cannot be read."""
    kind = schema.get("type")
    if kind == "enum" and schema.get("enum_value_type") in ("number", "date"):
        kind = schema["enum_value_type"]
    if value == "":
        return None if kind in ("number", "date") else ""
    if kind == "number":
        return normalize_number(value, schema.get("format"))
    if kind == "date":
        return normalize_date(value, schema.get("format"))
    if schema.get("type") == "enum":
        return _enum_option(schema, value)
    return value


def _enum_option(schema: Mapping[str, Any], value: str) -> str:
    # The reference matches enum values case-insensitively against the options.
    for option in schema.get("options") or []:
        if isinstance(option, dict) and str(option.get("value", "")).lower() == value.lower():
            return str(option["value"])
    return value


def normalize_number(value: str, number_format: Any = None) -> str | None:
    text = re.sub(r"[\s'\u00a0\u202f]", "", value)
    decimal_comma = _format_uses_decimal_comma(number_format)
    if "," in text and "." in text:
        # Whichever separator comes last is the decimal one: 1.234,5 / 1,234.5
        decimal_comma = text.rfind(",") > text.rfind(".")
    elif "," in text and not decimal_comma:
        # A lone comma followed by exactly three digits is a thousands separator (1,234).
        decimal_comma = not re.fullmatch(r"-?\d{1,3}(,\d{3})+", text)
    text = text.replace(".", "").replace(",", ".") if decimal_comma else text.replace(",", "")
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    return format(number.normalize(), "f")


def _format_uses_decimal_comma(number_format: Any) -> bool:
    if not isinstance(number_format, str) or "#" not in number_format:
        return False
    # "# ##0,#" and "#.##0,#" put a comma before the fraction digits.
    return bool(re.search(r",#+$", number_format))


_DATE_TOKENS = (("YYYY", "%Y"), ("YY", "%y"), ("MM", "%m"), ("M", "%m"), ("DD", "%d"), ("D", "%d"))


def normalize_date(value: str, date_format: Any = None) -> str | None:
    text = value.strip()
    patterns = []
    if isinstance(date_format, str) and date_format:
        patterns.append(_strptime_pattern(date_format))
    patterns += ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%d.%m.%Y", "%d/%m/%Y"]
    for pattern in patterns:
        try:
            return datetime.strptime(text, pattern).date().isoformat()
        except ValueError:
            continue
    return None


def _strptime_pattern(date_format: str) -> str:
    out, i = [], 0
    while i < len(date_format):
        for token, directive in _DATE_TOKENS:
            if date_format.startswith(token, i):
                out.append(directive)
                i += len(token)
                break
        else:
            out.append(date_format[i].replace("%", "%%"))
            i += 1
    return "".join(out)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = value
    elif isinstance(value, int | float):
        text = str(value)
    else:
        text = json.dumps(value, ensure_ascii=False)
    return text[:MAX_VALUE_CHARS]


def _int_or_zero(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 1000:
        return value
    return 0


def datapoints(content: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every datapoint node of a content tree, depth first (for tests, search and export)."""
    for node in content:
        if node.get("category") == "datapoint":
            yield node
        yield from datapoints(node.get("children") or [])
