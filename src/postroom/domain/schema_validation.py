"""Validation of a schema's `content`: the tree of sections, multivalues, tuples and datapoints.

The rules are the reference's "Document Schema": the top level is a list of sections; a section
holds datapoints and multivalues; a multivalue holds one tuple or one (non-button) datapoint; a
tuple holds datapoints. Every node has an `id` of at most 50 characters, unique in the schema
(annotation content and exports address datapoints by it). Datapoint types are string, number,
date, enum and button. Attributes Postroom does not interpret are kept as they are. A violation
raises a 400 naming the node by its path and id, e.g. `content[0].children[2] (id 'total')`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from postroom.errors import BadRequest

MAX_ID_LENGTH = 50
MAX_NODES = 5000
DATAPOINT_TYPES = ("string", "number", "date", "enum", "button")


class _Walk:
    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def fail(self, where: str, node: Any, problem: str) -> BadRequest:
        node_id = node.get("id") if isinstance(node, dict) else None
        named = f"{where} (id {node_id!r})" if isinstance(node_id, str) and node_id else where
        return BadRequest(f"content: {named}: {problem}")

    def common(self, where: str, node: Any, allowed: Sequence[str]) -> str:
        """Check the attributes every node has; return its category."""
        if not isinstance(node, dict):
            raise self.fail(where, node, "expected an object.")
        category = node.get("category")
        if category not in allowed:
            raise self.fail(
                where, node, f"category must be {' or '.join(allowed)}, got {category!r}."
            )
        node_id = node.get("id")
        if not isinstance(node_id, str) or not node_id:
            raise self.fail(where, node, "id is required and must be a non-empty string.")
        if len(node_id) > MAX_ID_LENGTH:
            raise self.fail(where, node, f"id is longer than {MAX_ID_LENGTH} characters.")
        if node_id in self.seen:
            raise self.fail(where, node, f"id is not unique (also used at {self.seen[node_id]}).")
        if len(self.seen) >= MAX_NODES:
            raise self.fail(where, node, f"a schema may have at most {MAX_NODES} nodes.")
        self.seen[node_id] = where
        for text in ("label", "description"):
            if node.get(text) is not None and not isinstance(node[text], str):
                raise self.fail(where, node, f"{text} must be a string.")
        for flag in ("hidden", "disable_prediction", "can_export", "can_collapse"):
            if flag in node and not isinstance(node[flag], bool):
                raise self.fail(where, node, f"{flag} must be true or false.")
        return str(category)

    def section(self, where: str, node: Any) -> None:
        self.common(where, node, ("section",))
        children = node.get("children")
        if not isinstance(children, list):
            raise self.fail(where, node, "children is required and must be a list.")
        for index, child in enumerate(children):
            path = f"{where}.children[{index}]"
            if isinstance(child, dict) and child.get("category") == "multivalue":
                self.multivalue(path, child)
            else:
                self.datapoint(path, child, ("datapoint", "multivalue"))

    def multivalue(self, where: str, node: dict[str, Any]) -> None:
        self.common(where, node, ("multivalue",))
        child = node.get("children")
        path = f"{where}.children"
        if not isinstance(child, dict):
            raise self.fail(where, node, "children is required and must be one object.")
        if child.get("category") == "tuple":
            self.tuple(path, child)
        else:
            self.datapoint(path, child, ("tuple", "datapoint"))
            if child.get("type") == "button":
                raise self.fail(path, child, "a button cannot be a direct child of a multivalue.")
        for bound, least in (("min_occurrences", 0), ("max_occurrences", 1)):
            value = node.get(bound)
            if value is not None and (not _is_int(value) or value < least):
                raise self.fail(where, node, f"{bound} must be an integer >= {least} or null.")

    def tuple(self, where: str, node: dict[str, Any]) -> None:
        self.common(where, node, ("tuple",))
        children = node.get("children")
        if not isinstance(children, list):
            raise self.fail(where, node, "children is required and must be a list.")
        for index, child in enumerate(children):
            self.datapoint(f"{where}.children[{index}]", child, ("datapoint",))

    def datapoint(self, where: str, node: Any, allowed: Sequence[str]) -> None:
        self.common(where, node, allowed)
        kind = node.get("type")
        if kind not in DATAPOINT_TYPES:
            raise self.fail(
                where, node, f"type must be one of {', '.join(DATAPOINT_TYPES)}, got {kind!r}."
            )
        _check_datapoint_attributes(self, where, node)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_datapoint_attributes(walk: _Walk, where: str, node: dict[str, Any]) -> None:
    names = node.get("rir_field_names")
    if names is not None and (
        not isinstance(names, list) or not all(isinstance(n, str) for n in names)
    ):
        raise walk.fail(where, node, "rir_field_names must be a list of strings or null.")
    if node.get("constraints") is not None and not isinstance(node["constraints"], dict):
        raise walk.fail(where, node, "constraints must be an object.")
    default = node.get("default_value")
    if default is not None and not isinstance(default, str):
        raise walk.fail(where, node, "default_value must be a string or null.")
    threshold = node.get("score_threshold")
    if threshold is not None and (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not 0 <= threshold <= 1
    ):
        raise walk.fail(where, node, "score_threshold must be a number between 0 and 1.")
    options = node.get("options")
    if options is not None and not (
        isinstance(options, list)
        and all(isinstance(o, dict) and isinstance(o.get("value"), str) for o in options)
    ):
        raise walk.fail(where, node, "options must be a list of {value, label} objects.")


def validate_schema_content(content: Any) -> None:
    """Raise a 400 naming the first node that breaks the rules of the module docstring."""
    if not isinstance(content, list):
        raise BadRequest("content: expected a list of sections.")
    walk = _Walk()
    for index, section in enumerate(content):
        walk.section(f"content[{index}]", section)
