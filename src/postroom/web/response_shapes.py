"""Response schemas for the OpenAPI document, read from the `render_<object>` functions' source.

Each resource module renders its object with one function returning a dict literal (plus keyed
assignments such as `body["x"] = ...`). The keys of that literal are the object's fields; a value
whose kind the code makes certain gives the field a type: `urls.to(...)` is a URL, `urls.of(...)`
a URL or null, `urls.many(...)` a list of URLs, `iso(...)` a timestamp or null, literals, `bool()`,
`float()`, `int()`, f-strings and `x or []` their own type. Anything else is left open (`{}`).
So the document follows the code: a field added to a renderer appears in the contract at once.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from functools import cache
from typing import Any

URL = {"type": "string", "format": "uri"}
NULLABLE_URL = {"type": ["string", "null"], "format": "uri"}
TIMESTAMP = {"type": ["string", "null"], "format": "date-time"}
_CALLS: dict[str, dict[str, Any]] = {
    "to": URL,
    "of": NULLABLE_URL,
    "many": {"type": "array", "items": URL},
    "iso": TIMESTAMP,
    "bool": {"type": "boolean"},
    "float": {"type": "number"},
    "int": {"type": "integer"},
    "len": {"type": "integer"},
    "str": {"type": "string"},
    "list": {"type": "array"},
    "dict": {"type": "object"},
}
_CONSTANTS = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}


def singular(collection: str) -> str:
    """`queues` → `queue`, `inboxes` → `inbox`, `organization_groups` → `organization_group`."""
    if collection.endswith("xes"):
        return collection[:-2]
    return collection[:-1] if collection.endswith("s") else collection


def _value_schema(node: ast.expr) -> dict[str, Any]:
    if isinstance(node, ast.Constant):
        kind = _CONSTANTS.get(type(node.value))
        return {"type": kind} if kind else {}
    if isinstance(node, ast.List | ast.ListComp):
        return {"type": "array"}
    if isinstance(node, ast.Dict | ast.DictComp):
        return {"type": "object"}
    if isinstance(node, ast.JoinedStr):
        return {"type": "string"}
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        sides = (_value_schema(node.left), _value_schema(node.right))
        if {"type": "string"} in sides or URL in sides:
            return {"type": "string"}
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
        last = _value_schema(node.values[-1])
        return last if last.get("type") in ("array", "object") else {}
    if isinstance(node, ast.Attribute) and node.attr == "id":
        return {"type": "integer"}  # a row's primary key
    if isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        return dict(_CALLS.get(name, {}))
    return {}


def _returned_dict(tree: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[ast.Dict, str | None]:
    """The dict literal the function returns directly, or through one local name."""
    assigned: dict[str, ast.Dict] = {}
    for statement in tree.body:
        if isinstance(statement, ast.Assign | ast.AnnAssign) and isinstance(
            statement.value, ast.Dict
        ):
            target = statement.targets[0] if isinstance(statement, ast.Assign) else statement.target
            if isinstance(target, ast.Name):
                assigned[target.id] = statement.value
        if isinstance(statement, ast.Return) and statement.value is not None:
            if isinstance(statement.value, ast.Dict):
                return statement.value, None
            if isinstance(statement.value, ast.Name) and statement.value.id in assigned:
                return assigned[statement.value.id], statement.value.id
    raise LookupError("no returned dict literal")


def _keyed_assignments(tree: ast.AST, name: str) -> dict[str, ast.expr]:
    """`name["key"] = value` anywhere in the function (added fields, e.g. conditional ones)."""
    found: dict[str, ast.expr] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if (
                    isinstance(target, ast.Subscript)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == name
                    and isinstance(target.slice, ast.Constant)
                    and isinstance(target.slice.value, str)
                ):
                    found[target.slice.value] = node.value
    return found


@cache
def object_schema(render: Callable[..., Any]) -> dict[str, Any] | None:
    """The JSON schema of what `render` returns, or None when its source cannot be read."""
    try:
        source = textwrap.dedent(inspect.getsource(render))
        tree = ast.parse(source).body[0]
        assert isinstance(tree, ast.FunctionDef | ast.AsyncFunctionDef)
        literal, local = _returned_dict(tree)
    except (OSError, TypeError, SyntaxError, AssertionError, LookupError):
        return None
    properties: dict[str, Any] = {}
    required: list[str] = []
    for key, value in zip(literal.keys, literal.values, strict=True):
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            properties[key.value] = _value_schema(value)
            required.append(key.value)
    if local is not None:
        for key, value in _keyed_assignments(tree, local).items():
            # Set later, perhaps only in some branch: described, not required.
            properties.setdefault(key, _value_schema(value))
    return {"type": "object", "properties": properties, "required": required}
