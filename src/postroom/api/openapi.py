"""The OpenAPI 3.1 document, generated from the endpoint declarations (`api.routing`) alone.

For every declared endpoint: the path and its `{parameters}` (ids are integers), the query
parameters it declares (and for a list, the domain `Listing`'s filters and orderings with
`page`/`page_size`), the request body (a JSON model; multipart file parts and text fields plus a
raw body for uploads), the success answer (a TypedDict or model through pydantic's JSON schema,
wrapped in the pagination envelope for lists; the media types of a download; nothing for an
empty answer) and the errors it declares. Some are added where they apply: 400 when the endpoint
reads any input (the path id included), 401 unless it is public, 429 unless it is exempt from
the rate limits, and for a create that takes an `Idempotency-Key` header (declared as a header
parameter) 409 while another request with the key runs and 422 for a key reused with another
request. Every error has the one `{"detail", "code"}` schema.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from postroom.api.middleware.limits import EXEMPT_PATHS
from postroom.api.openapi_refine import add_links, without_nul, without_null
from postroom.api.openapi_schemas import PAGINATION_SCHEMA, REF, SchemaBook
from postroom.api.routing import Download, Endpoint, Files, Param, Redirect
from postroom.domain.listing import MAX_PAGE_NUMBER, Filter, Listing, ordering_pattern
from postroom.errors import (
    AuthenticationFailed,
    BadRequest,
    ConflictStatus,
    PostroomError,
    RateLimited,
    Unprocessable,
)
from postroom.urls import MAX_ID

_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
# Text path parameters: a file name holds a non-digit (all digits name an id).
_PATH_TEXT = {"filename": "^[^/]*[^/0-9][^/]*$"}
_PAGE_PARAMS = (
    Param(
        "page",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_NUMBER},
        "Page number (default 1).",
    ),
    Param(
        "page_size",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_NUMBER},
        "Page size (default 20; more than 100 reads as 100).",
    ),
)
_FILTER_KINDS = {
    "ids": "comma list of ids or URLs",
    "strs": "comma list",
    "str": "exact value",
    "icontains": "part of the value, any case",
    "bool": "true or false",
    "before": "timestamp, exclusive",
    "after": "timestamp, inclusive",
    "custom": "value",
}


def _template(path: str) -> str:
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", path)


def _path_parameters(path: str) -> list[dict[str, Any]]:
    params = []
    for name in _PARAM.findall(path):
        is_id = name == "id" or name.endswith("_id")
        schema: dict[str, Any] = (
            {"type": "integer", "minimum": 1, "maximum": MAX_ID}
            if is_id
            else {"type": "string", "minLength": 1, "pattern": _PATH_TEXT.get(name, "^[^/]+$")}
        )
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return params


def _query(param: Param) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": param.name,
        "in": "query",
        "required": param.required,
        "schema": dict(param.schema),
        # One value per parameter (`a=1,2`), never spread into other keys (`x=1&y=2`), which
        # the API would take for other, unknown parameters.
        "explode": False,
    }
    if param.description:
        entry["description"] = param.description
    return entry


def _filter_param(f: Filter) -> Param:
    kind = _FILTER_KINDS.get(f.kind, "value")
    return Param(f.param, dict(f.value_schema()), f"Filter ({kind}).")


def _listing_params(listing: Listing) -> Iterable[Param]:
    yield from (_filter_param(f) for f in listing.filters)
    yield from _PAGE_PARAMS
    fields = ", ".join(sorted(listing.ordering))
    yield Param(
        "ordering",
        {"type": "string", "pattern": ordering_pattern(listing.ordering)},
        f"Comma list of {fields}; `-` for descending.",
    )


IDEMPOTENCY_KEY_PARAM: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
    "description": (
        "Retry safely: the same key and request within 24 hours answers the first answer "
        "again and creates nothing; the key with another request is a 422."
    ),
}


def _parameters(endpoint: Endpoint) -> list[dict[str, Any]]:
    params = [*endpoint.query, *(_listing_params(endpoint.listing) if endpoint.listing else ())]
    unique: dict[str, dict[str, Any]] = {}
    for param in params:
        unique.setdefault(param.name, _query(param))
    headers = [IDEMPOTENCY_KEY_PARAM] if endpoint.idempotent else []
    return _path_parameters(endpoint.path) + list(unique.values()) + headers


def _upload_content(files: Files) -> dict[str, Any]:
    properties: dict[str, Any] = {
        files.file_field: {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "format": "binary", "minLength": 1},
            "description": "One part per file (any part with a file name is a file too); "
            "no file may be empty.",
        }
    }
    if files.single:
        properties[files.file_field]["maxItems"] = 1
    encoding: dict[str, Any] = {}
    for name, description in files.fields.items():
        properties[name] = {"type": "string", **files.schemas.get(name, {})}
        properties[name]["description"] = description
        if properties[name]["type"] == "object":
            encoding[name] = {"contentType": "application/json"}
        elif name in files.required:
            properties[name]["minLength"] = 1
    multipart: dict[str, Any] = {
        "schema": {
            "type": "object",
            "required": [files.file_field, *files.required],
            "properties": properties,
            "additionalProperties": False,
        }
    }
    if encoding:
        multipart["encoding"] = encoding
    content: dict[str, Any] = {"multipart/form-data": multipart}
    if files.raw:
        raw = {"schema": {"type": "string", "format": "binary", "minLength": 1}}
        content["application/octet-stream"] = raw
        content["*/*"] = raw
    return content


def _request_body(endpoint: Endpoint, book: SchemaBook) -> dict[str, Any] | None:
    body = endpoint.body
    if isinstance(body, Files):
        return {"required": True, "content": _upload_content(body)}
    if body is None:
        return None
    schema = book.ref(body, request=True)
    content = {"application/json": {"schema": schema}}
    name = schema["$ref"].rsplit("/", 1)[-1]
    if endpoint.form:
        # A form field is text: no null (nor numbers) to send.
        form_name = name + "Form"
        book.schemas.setdefault(form_name, without_null(book.schemas[name]))
        book.requests.add(form_name)
        content["application/x-www-form-urlencoded"] = {
            "schema": {"$ref": REF.format(model=form_name)}
        }
    required = bool(book.schemas[name].get("required"))
    return {"required": required, "content": content}


def _download_schema(media_type: str) -> dict[str, Any]:
    """Bytes, but for `*/*` (anything, JSON included) and JSON media (an object)."""
    if media_type == "*/*":
        return {}
    if media_type.split(";", 1)[0].strip().endswith("json"):
        return {"type": "object"}
    return {"type": "string", "format": "binary"}


def _answer(
    shape: Any,
    description: str,
    book: SchemaBook,
    listing: Listing | None,
    partial: bool = False,
) -> Any:
    if shape is None:
        return {"description": description}
    if isinstance(shape, Redirect):
        return {
            "description": shape.description,
            "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}},
        }
    if isinstance(shape, Download):
        media = {m: {"schema": _download_schema(m)} for m in shape.media_types}
        return {"description": shape.description, "content": media}
    schema: dict[str, Any] = book.partial(shape) if partial else book.ref(shape)
    if listing is not None:
        schema = {
            "type": "object",
            "required": ["pagination", "results"],
            "properties": {
                "pagination": PAGINATION_SCHEMA,
                "results": {"type": "array", "items": schema},
            },
        }
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_METHOD_NOT_ALLOWED = 405
_METHOD_NOT_ALLOWED_ANSWER: dict[str, Any] = {
    "description": "The URL names another resource, which does not take this method (a path "
    "parameter that is no valid value here, e.g. `/uploads/invoice.pdf` for a GET).",
    "headers": {"Allow": {"schema": {"type": "string"}}},
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


class _MethodNotAllowed(PostroomError, status=_METHOD_NOT_ALLOWED, code="method_not_allowed"):
    """The URL names another resource, which does not take this method."""


def _errors(endpoint: Endpoint) -> list[type[PostroomError]]:
    found: list[type[PostroomError]] = list(endpoint.errors)
    reads_input = bool(
        endpoint.body or endpoint.query or endpoint.listing or _PARAM.search(endpoint.path)
    )
    if reads_input:
        found.append(BadRequest)
    if _PARAM.search(endpoint.path):
        found.append(_MethodNotAllowed)
    if endpoint.auth != "public":
        found.append(AuthenticationFailed)
    if endpoint.path not in EXEMPT_PATHS:
        found.append(RateLimited)
    if endpoint.idempotent:
        found.extend((ConflictStatus, Unprocessable))
    return found


def _error_responses(errors: Iterable[type[PostroomError]]) -> dict[str, Any]:
    by_status: dict[int, list[type[PostroomError]]] = {}
    for error in errors:
        by_status.setdefault(error.status, []).append(error)
    responses: dict[str, Any] = {}
    for status in sorted(by_status):
        if status == _METHOD_NOT_ALLOWED:
            responses[str(status)] = _METHOD_NOT_ALLOWED_ANSWER
            continue
        descriptions = dict.fromkeys((e.__doc__ or e.code).strip() for e in by_status[status])
        entry: dict[str, Any] = {
            "description": " / ".join(descriptions),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        if status == RateLimited.status:
            entry["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
        responses[str(status)] = entry
    return responses


def _operation(endpoint: Endpoint, book: SchemaBook, op_ids: set[str]) -> dict[str, Any]:
    template = _template(endpoint.path)
    op_id = endpoint.method.lower() + re.sub(r"[^a-z0-9]+", "_", template.lower()).rstrip("_")
    while op_id in op_ids:
        op_id += "_"
    op_ids.add(op_id)
    segments = [s for s in template.split("/") if s and not s.startswith("{")]
    tag = segments[2] if segments[:2] == ["api", "v1"] and len(segments) > 2 else segments[0]
    partial = any(p.name in ("fields", "fields!") for p in endpoint.query)
    responses = {
        str(endpoint.status): _answer(
            endpoint.response, "Success.", book, endpoint.listing, partial
        )
    }
    for status, shape in endpoint.also.items():
        responses[str(status)] = _answer(shape, "Success.", book, None)
    operation: dict[str, Any] = {
        "operationId": op_id,
        "summary": endpoint.summary,
        "tags": [tag],
        "parameters": _parameters(endpoint),
        "responses": responses | _error_responses(_errors(endpoint)),
    }
    body = _request_body(endpoint, book)
    if body is not None:
        operation["requestBody"] = body
    if endpoint.auth == "public":
        operation["security"] = []
    elif endpoint.auth == "basic":
        operation["security"] = [{"bearer": []}, {"basic": []}]
    return operation


def build_document(endpoints: Iterable[Endpoint], base_url: str, version: str) -> dict[str, Any]:
    """The OpenAPI document of the declared endpoints."""
    book = SchemaBook()
    paths: dict[str, dict[str, Any]] = {}
    op_ids: set[str] = set()
    for endpoint in endpoints:
        if endpoint.hidden:
            continue
        paths.setdefault(_template(endpoint.path), {})[endpoint.method.lower()] = _operation(
            endpoint, book, op_ids
        )
    add_links(paths, book.schemas)
    for name, schema in book.schemas.items():
        if name in book.requests:
            without_nul(schema)
    for item in paths.values():
        for operation in item.values():
            for content in operation.get("requestBody", {}).get("content", {}).values():
                without_nul(content["schema"])
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
