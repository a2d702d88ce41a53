"""The OpenAPI 3.1 document, generated from the live aiohttp router and the handlers' pydantic models.

Nothing is written by hand. For every route the generator reads:
- the path template and its `{parameters}` (ids are integers: `path_id` rejects anything else);
- the auth markers of `web/auth.py` (`@public`, `@basic_auth_allowed`) → `security`;
- the handler's code and the Postroom functions it calls (`handler_code.read_handler`): the first
  pydantic model it validates a body with (`validate(Model, …)`, `parse_body(Model, …)`) is the
  request body schema; listing `Filter`s it applies are query parameters, and `paginate` adds
  `page`/`page_size`/`ordering` and the pagination envelope as the response; the status codes it
  answers with (`status=201`, `HTTPSeeOther`, …) are its success responses;
- an `@operation(...)` decorator, when present, which states any of these explicitly (summary,
  body model, query model, success codes and media types, request media for uploads).

Every operation also lists the errors the middlewares can produce, all with the one error schema
`{"detail", "code"}` (429 adds `url` and `Retry-After`).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pydantic
from aiohttp import web

from postroom.web.handler_code import Findings, read_handler
from postroom.web.response_shapes import object_schema, singular

H = TypeVar("H", bound=Callable[..., Any])

OPERATION_ATTR = "postroom_openapi"
HIDDEN_ATTR = "postroom_openapi_hidden"
_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")


@dataclass(frozen=True)
class Operation:
    """What a handler states about itself; anything left None is introspected."""

    summary: str | None = None
    body: type[pydantic.BaseModel] | None = None
    query: type[pydantic.BaseModel] | None = None
    request_content: dict[str, Any] | None = None  # media type → schema (e.g. multipart uploads)
    responses: dict[int, str] | None = None  # success status → description
    response_media: tuple[str, ...] | None = None
    response_model: type[pydantic.BaseModel] | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)


def operation(**stated: Any) -> Callable[[H], H]:
    """Describe a handler for the OpenAPI document (see `Operation` for the keywords)."""

    def mark(handler: H) -> H:
        setattr(handler, OPERATION_ATTR, Operation(**stated))
        return handler

    return mark


def hidden(handler: H) -> H:
    """Leave a route out of the document (static assets of the docs page)."""
    setattr(handler, HIDDEN_ATTR, True)
    return handler


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["detail", "code"],
    "properties": {
        "detail": {"type": "string", "description": "What was wrong: the field or the limit."},
        "code": {"type": "string", "description": "Stable error code (bad_request, ...)."},
        "url": {"type": "string", "description": "Documentation of the limit (429 only)."},
    },
}
PAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["pagination", "results"],
    "properties": {
        "pagination": {
            "type": "object",
            "required": ["total", "total_pages", "next", "previous"],
            "properties": {
                "total": {"type": "integer", "minimum": 0},
                "total_pages": {"type": "integer", "minimum": 0},
                "next": {"type": ["string", "null"]},
                "previous": {"type": ["string", "null"]},
            },
        },
        "results": {"type": "array", "items": {"type": "object"}},
    },
}
# Streamed uploads: multipart `content` file parts (+ `metadata`/`values` JSON strings), or one raw body.
UPLOAD_CONTENT: dict[str, Any] = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "required": ["content"],
            "properties": {
                "content": {"type": "string", "format": "binary"},
                "metadata": {"type": "string", "description": "A JSON object."},
                "values": {"type": "string", "description": "A JSON object."},
            },
        }
    },
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
}
_ERRORS = {
    400: "Bad request: the detail names the field or parameter.",
    401: "Missing, invalid or expired credentials.",
    403: "Authenticated, but the role does not allow this.",
    404: "No such object (or not visible to this user).",
    405: "Method not allowed.",
    409: "Conflict with the object's status.",
    413: "Payload too large: the detail states the limit.",
    415: "Unsupported media type.",
    429: "Rate limited: retry after Retry-After seconds.",
}
_PAGE_PARAMS = (
    ("page", {"type": "integer", "minimum": 1}, "Page number (default 1)."),
    ("page_size", {"type": "integer", "minimum": 1}, "Page size (default 20, max 100)."),
    ("ordering", {"type": "string"}, "Comma list of fields, `-` for descending."),
)


class SchemaBook:
    """components/schemas: each pydantic model once, under its class name."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {"Error": ERROR_SCHEMA, "Page": PAGE_SCHEMA}
        self._names: dict[type[pydantic.BaseModel], str] = {}

    def ref(self, model: type[pydantic.BaseModel]) -> dict[str, str]:
        name = self._names.get(model)
        if name is None:
            name = model.__name__
            if name in self.schemas:
                name = f"{model.__module__.rsplit('.', 1)[-1]}_{name}"
            self._names[model] = name
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for def_name, definition in schema.pop("$defs", {}).items():
                self.schemas.setdefault(def_name, definition)
            self.schemas[name] = schema
        return {"$ref": f"#/components/schemas/{name}"}


def _path_parameters(template: str) -> list[dict[str, Any]]:
    params = []
    for name in _PARAM.findall(template):
        is_id = name == "id" or name.endswith("_id")
        schema: dict[str, Any] = {"type": "integer", "minimum": 1} if is_id else {"type": "string"}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return params


def _query_parameters(stated: Operation, found: Findings) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    if stated.query is not None:
        schema = stated.query.model_json_schema()
        required = set(schema.get("required", ()))
        for name, prop in schema.get("properties", {}).items():
            params.append(
                {"name": name, "in": "query", "required": name in required, "schema": prop}
            )
    for f in found.filters:
        kind = {"bool": "true or false", "before": "timestamp", "after": "timestamp"}
        described = kind.get(f.kind, "comma list" if f.kind in ("ids", "strs") else "value")
        params.append(
            {
                "name": f.param,
                "in": "query",
                "required": False,
                "schema": {"type": "string"},
                "description": f"Filter ({described}).",
            }
        )
    for name, kind in found.query.items():
        params.append({"name": name, "in": "query", "required": False, "schema": {"type": kind}})
    if "paginate" in found.names:
        for name, schema, description in _PAGE_PARAMS:
            params.append(
                {"name": name, "in": "query", "required": False, "schema": schema}
                | {"description": description}
            )
    unique: dict[str, dict[str, Any]] = {}
    for param in params:
        unique.setdefault(param["name"], param)
    return list(unique.values())


def _resource_ref(
    method: str, template: str, found: Findings, book: SchemaBook
) -> dict[str, Any] | None:
    """The object schema of `/api/v1/<things>` and `/api/v1/<things>/{id}`, from `render_<thing>`."""
    parts = template.split("/")
    if parts[:3] != ["", "api", "v1"] or len(parts) not in (4, 5):
        return None
    if len(parts) == 5 and not parts[4].startswith("{"):
        return None
    if len(parts) == 4 and method == "GET" and found.names.isdisjoint({"paginate", "envelope"}):
        return None  # a collection's GET answers a page of objects, not one
    thing = singular(parts[3])
    render = found.functions.get(f"render_{thing}")
    schema = object_schema(render) if render is not None else None
    if schema is None:
        return None
    name = "".join(word.capitalize() for word in thing.split("_"))
    if "fields" in found.query:  # `fields=`/`fields!=` may drop any key
        schema = {k: v for k, v in schema.items() if k != "required"}
        name += "Fields"
    if book.schemas.get(name, schema) != schema:  # a request model of the same name
        name += "Object"
    book.schemas[name] = schema
    return {"$ref": f"#/components/schemas/{name}"}


def _success_schema(
    stated: Operation, found: Findings, book: SchemaBook, resource: dict[str, Any] | None
) -> dict[str, Any]:
    if stated.response_model is not None:
        return book.ref(stated.response_model)
    if not {"paginate", "envelope"} & found.names:
        return resource or {"type": "object"}
    if resource is None:
        return {"$ref": "#/components/schemas/Page"}
    return {
        "type": "object",
        "required": ["pagination", "results"],
        "properties": {
            "pagination": PAGE_SCHEMA["properties"]["pagination"],
            "results": {"type": "array", "items": resource},
        },
    }


def _success_responses(
    method: str, stated: Operation, found: Findings, book: SchemaBook, template: str
) -> dict[str, Any]:
    if stated.responses:
        codes = dict(stated.responses)
    else:
        statuses = set(found.statuses)
        if {"HTTPSeeOther", "HTTPFound"} & found.names:
            statuses.add(303)
        if "HTTPNoContent" in found.names:
            statuses.add(204)
        if not statuses or (method == "GET" and statuses <= {303}):
            statuses.add(200)
        codes = {code: "Success." for code in sorted(statuses)}
    resource = _resource_ref(method, template, found, book)
    schema = _success_schema(stated, found, book, resource)
    media = stated.response_media
    if media is None:
        media = ("application/json",) if "json_response" in found.names else ("*/*",)
    responses: dict[str, Any] = {}
    for code, description in codes.items():
        entry: dict[str, Any] = {"description": description}
        # 204, redirects, and bare `web.Response(status=202)` acknowledgements carry no body.
        bodiless = code in (204, 303) or (code == 202 and "json_response" not in found.names)
        if not bodiless or stated.response_media is not None:
            # The object schema describes 200/201 answers; a 202 acknowledges something else.
            typed = schema if code in (200, 201) or schema is not resource else {"type": "object"}
            entry["content"] = {
                m: ({"schema": typed} if m == "application/json" else {"schema": {}}) for m in media
            }
        if code == 303:
            entry["headers"] = {"Location": {"schema": {"type": "string"}}}
        responses[str(code)] = entry
    return responses


def _error_responses() -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for code, description in _ERRORS.items():
        entry: dict[str, Any] = {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        if code == 429:
            entry["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
        responses[str(code)] = entry
    return responses


def _request_body(
    method: str, stated: Operation, found: Findings, book: SchemaBook
) -> dict[str, Any] | None:
    if method not in ("POST", "PUT", "PATCH"):
        return None
    if stated.request_content is not None:
        return {"required": True, "content": stated.request_content}
    if "multipart" in found.names:
        return {"required": True, "content": UPLOAD_CONTENT}
    model = stated.body or found.body
    schema: dict[str, Any] = book.ref(model) if model is not None else {"type": "object"}
    return {"required": model is not None, "content": {"application/json": {"schema": schema}}}


def _operation(
    route: web.AbstractRoute, template: str, book: SchemaBook, op_ids: set[str]
) -> dict[str, Any]:
    handler = route.handler
    stated: Operation = getattr(handler, OPERATION_ATTR, None) or Operation()
    found = read_handler(handler)
    method = route.method.upper()
    public = bool(getattr(handler, "postroom_public", False))
    doc = (inspect.getdoc(handler) or "").strip()
    name = getattr(handler, "__name__", "handler")
    op_id = method.lower() + re.sub(r"[^a-z0-9]+", "_", template.lower()).rstrip("_")
    while op_id in op_ids:
        op_id += "_"
    op_ids.add(op_id)
    segments = [s for s in template.split("/") if s and not s.startswith("{")]
    tag = segments[2] if len(segments) > 2 and segments[:2] == ["api", "v1"] else segments[0]
    result: dict[str, Any] = {
        "operationId": op_id,
        "summary": stated.summary or (doc.splitlines()[0] if doc else name.replace("_", " ")),
        "tags": list(stated.tags or (tag,)),
        "parameters": _path_parameters(template) + _query_parameters(stated, found),
        "responses": {},
    }
    body = _request_body(method, stated, found, book)
    if body is not None:
        result["requestBody"] = body
    if public:
        result["security"] = []
    elif getattr(handler, "postroom_basic", False):
        result["security"] = [{"bearer": []}, {"basic": []}]
    result["responses"] = (
        _success_responses(method, stated, found, book, template) | _error_responses()
    )
    return result


def build_document(app: web.Application, base_url: str, version: str) -> dict[str, Any]:
    """The OpenAPI document of every route of `app`."""
    book = SchemaBook()
    paths: dict[str, dict[str, Any]] = {}
    op_ids: set[str] = set()
    for route in app.router.routes():
        method = route.method.upper()
        resource = route.resource
        if method in ("HEAD", "*") or resource is None:
            continue
        if getattr(route.handler, HIDDEN_ATTR, False):
            continue
        template = _PARAM.sub(lambda m: "{" + m.group(1) + "}", resource.canonical)
        paths.setdefault(template, {})[method.lower()] = _operation(
            route, resource.canonical, book, op_ids
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Postroom API",
            "version": version,
            "description": "Document intake gateway speaking the Rossum REST API.",
        },
        "servers": [{"url": base_url}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": book.schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Token from POST /api/v1/auth/login (`Token <key>` works too).",
                },
                "basic": {"type": "http", "scheme": "basic"},
            },
        },
        "security": [{"bearer": []}],
    }
