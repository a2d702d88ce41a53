"""JSON text from clients, read strictly: what is accepted can always be stored and written out again.

Refused, with a 400 that names the field (`metadata.note`, `content[2].value`, `body`):

- NaN, Infinity and numbers too large for a double (`1e999`): JSON has no such values, and
  exports and answers would write invalid JSON;
- lone surrogates (`"\\ud800"`): no UTF-8 encoding exists, so exports, PostgreSQL and every
  answer that repeats the value would fail;
- U+0000: PostgreSQL text and JSONB cannot hold it;
- nesting deeper than MAX_DEPTH arrays and objects (a deep body would exhaust the stack).
"""

from __future__ import annotations

import json
import math
from typing import Any

from postroom.errors import BadRequest

MAX_DEPTH = 64


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text} is out of range")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def parse(raw: str | bytes, where: str = "body") -> Any:
    """`raw` as a JSON value (400 naming `where` when malformed, too deep or unstorable)."""
    try:
        value = json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite)
    except RecursionError:
        raise BadRequest(f"{where}: nested deeper than {MAX_DEPTH} levels.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"{where}: not valid JSON ({exc}).") from None
    check(value, where)
    return value


def _problem(text: str) -> str | None:
    if "\x00" in text:
        return "may not contain U+0000"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "may not contain a lone surrogate (\\ud800-\\udfff)"
    return None


def _path(parent: str, key: str | int, top: str) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return key if parent == top and top == "body" else f"{parent}.{key}"


def check(value: Any, where: str = "body") -> None:
    """400 naming the field when `value` holds a string or number that cannot be stored or
    written out again, or nests deeper than MAX_DEPTH."""
    pending: list[tuple[str, Any, int]] = [(where, value, 0)]
    while pending:
        path, item, depth = pending.pop()
        if isinstance(item, str):
            problem = _problem(item)
            if problem:
                raise BadRequest(f"{path}: {problem}.")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise BadRequest(f"{path}: NaN and Infinity are not JSON numbers.")
        elif isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                raise BadRequest(f"{path}: nested deeper than {MAX_DEPTH} levels.")
            if isinstance(item, list):
                pending.extend((_path(path, i, where), v, depth + 1) for i, v in enumerate(item))
                continue
            for key, child in item.items():
                name = str(key)
                problem = _problem(name)
                if problem:
                    raise BadRequest(f"{path}: a key {problem}.")
                pending.append((_path(path, name, where), child, depth + 1))
