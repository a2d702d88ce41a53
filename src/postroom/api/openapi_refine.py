"""Refinements of the generated OpenAPI document: links between operations (an answer naming an
object leads to the operations on it), no U+0000 in the strings and keys of request bodies, and
the text-only variant of a body sent as a form."""

from __future__ import annotations

from typing import Any


def _has_id(schema: Any, schemas: dict[str, Any]) -> bool:
    ref = schema.get("$ref", "") if isinstance(schema, dict) else ""
    target = schemas.get(ref.rsplit("/", 1)[-1], {})
    return "id" in target.get("properties", {})


def _id_source(operation: dict[str, Any], schemas: dict[str, Any]) -> str | None:
    """Where an answer of `operation` carries an object id: `$response.body#/id` for an
    object, `#/results/0/id` for a list of them; None when it carries none."""
    for status, answer in operation["responses"].items():
        if not status.startswith("2"):
            continue
        schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
        if _has_id(schema, schemas):
            return "$response.body#/id"
        results = schema.get("properties", {}).get("results", {}).get("items", {})
        if _has_id(results, schemas):
            return "$response.body#/results/0/id"
    return None


def add_links(paths: dict[str, dict[str, Any]], schemas: dict[str, Any]) -> None:
    """OpenAPI links: an answer that names an object (a create, a retrieve, a list) leads to
    the operations on that object (`POST /queues` → `GET`/`PATCH`/`DELETE /queues/{id}`, …), so
    clients and testers can follow them."""
    for path, item in paths.items():
        collection = path.removesuffix("/{id}")
        targets = [
            (other, method, op)
            for other, other_item in paths.items()
            if other.startswith(collection + "/{id}")
            for method, op in other_item.items()
        ]
        for method, operation in item.items():
            source = _id_source(operation, schemas)
            if source is None or method == "delete":
                continue
            links = {
                target_op["operationId"]: {
                    "operationId": target_op["operationId"],
                    "parameters": {"path.id": source},
                }
                for target, target_method, target_op in targets
                if not (target == path and target_method == method)
            }
            for answer in (v for k, v in operation["responses"].items() if k.startswith("2")):
                if links and "content" in answer:
                    answer["links"] = links


# JSON text may spell U+0000, but no body may carry it (PostgreSQL text cannot hold it).
NO_NUL = "^[^\\x00]*$"


def without_nul(schema: Any) -> None:
    """Say so in every string and object-key schema of the request bodies."""
    pending = [schema]
    while pending:
        item = pending.pop()
        if isinstance(item, list):
            pending.extend(item)
            continue
        if not isinstance(item, dict):
            continue
        kinds = item.get("type")
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if "string" in kinds and not {"pattern", "format", "enum", "const"} & item.keys():
            item["pattern"] = NO_NUL
        if "object" in kinds and "propertyNames" not in item:
            item["propertyNames"] = {"pattern": NO_NUL}
        pending.extend(v for k, v in item.items() if k != "propertyNames")


def without_null(schema: Any) -> Any:
    """A copy of `schema` whose alternatives are only strings (a form's fields are text)."""
    if isinstance(schema, list):
        return [without_null(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    copy = {k: without_null(v) for k, v in schema.items()}
    if "anyOf" in copy:
        texts = [s for s in copy["anyOf"] if isinstance(s, dict) and s.get("type") == "string"]
        if texts:
            copy["anyOf"] = texts
    return copy
