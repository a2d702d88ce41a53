"""Reading request bodies and query parameters: JSON (or form) → validated values, or a 400 naming the field.

A body read whole must arrive within `http.body_timeout_s` (else 408, and the connection closes):
a client trickling a JSON body cannot hold a handler and its connection forever.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

import pydantic
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from postroom import jsontext, metrics
from postroom.api.keys import runtime
from postroom.errors import BadRequest, NotFound, RequestTimeout
from postroom.urls import MAX_ID, digits

M = TypeVar("M", bound=pydantic.BaseModel)

# JSON bodies of the management API are small; uploads stream and never come through here.
MAX_JSON_BODY = 2 * 1024 * 1024


async def read_object(request: web.Request, *, allow_form: bool = False) -> dict[str, Any]:
    """The body as a JSON object ({} when empty); form bodies too when `allow_form`."""
    if request.content_length and request.content_length > MAX_JSON_BODY:
        raise BadRequest(f"Request body is larger than {MAX_JSON_BODY} bytes.")
    timeout = runtime(request).settings.http.body_timeout_s
    try:
        async with asyncio.timeout(timeout):
            return await _read_object(request, allow_form)
    except TimeoutError:
        metrics.CONNECTIONS_TIMED_OUT.labels(protocol="http", phase="body").inc()
        raise RequestTimeout(
            f"The request body did not arrive within {timeout:g} s (http.body_timeout_s)."
        ) from None


async def _read_object(request: web.Request, allow_form: bool) -> dict[str, Any]:
    if allow_form and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        try:
            form = await request.post()
        except (ValueError, HttpProcessingError) as exc:
            # e.g. multipart/form-data without a boundary, or a malformed part header
            raise BadRequest(f"Malformed form body: {exc}.") from None
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        jsontext.check(fields)
        return fields
    raw = await whole_body(request)
    if not raw.strip():
        return {}
    value = jsontext.parse(raw)
    if not isinstance(value, dict):
        raise BadRequest("Request body must be a JSON object.")
    return value


_WHOLE_BODY: web.RequestKey[bytes] = web.RequestKey("whole_body")


async def whole_body(request: web.Request) -> bytes:
    """The body read whole (at most MAX_JSON_BODY bytes); read once, later calls get the same."""
    body = request.get(_WHOLE_BODY)
    if body is None:
        body = request[_WHOLE_BODY] = await _read_whole(request)
    return body


async def _read_whole(request: web.Request) -> bytes:
    # StreamReader.read(n) returns what has arrived so far, not n bytes: read until EOF.
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(65536):
        size += len(chunk)
        if size > MAX_JSON_BODY:
            raise BadRequest(f"Request body is larger than {MAX_JSON_BODY} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def validation_detail(error: pydantic.ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(p) for p in item["loc"]) or "body"
        message = item["msg"]
        if item["type"] == "missing":
            message = "This field is required."
        elif item["type"] == "extra_forbidden":
            message = "Unknown field."
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def validate(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as error:
        raise BadRequest(validation_detail(error)) from None


def query_bool(request: web.Request, name: str, default: bool = False) -> bool:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise BadRequest(f"{name}: expected true or false, got {raw!r}.")


def path_id(request: web.Request, name: str = "id") -> int:
    raw = request.match_info[name]
    # Anything but ASCII digits names no object; neither does a number beyond the largest id.
    if not digits(raw) or len(raw) > 18 or not 1 <= int(raw) <= MAX_ID:
        raise NotFound()
    return int(raw)
