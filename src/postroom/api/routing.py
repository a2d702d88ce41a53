"""The REST API's route table: every endpoint declares what it takes and answers, next to its handler.

    routes = Routes()

    @routes.get("/workspaces/{id}", response=WorkspaceJson, errors=(NotFound,))
    async def retrieve_workspace(call: Call) -> WorkspaceJson:
        '''Retrieve a workspace.'''
        return await workspaces.retrieve(call.rt, call.actor, call.id)

A declaration states:

- `body`: a pydantic model (a JSON object, or a form too with `form=True`, validated into
  `call.body`), or `Files(...)` (multipart file parts and text fields, or a raw body, which the
  handler streams itself);
- `query`: the parameters the handler reads (`Param`s), and for a list the domain's `Listing`
  (its filters and orderings; `page`, `page_size` and the pagination envelope come with it);
- `status` and `response`: the success code and the shape of the answer (a TypedDict or pydantic
  model, a `Download` of some media types, or None for an empty answer); `also` adds other
  answers (a 303 `Redirect`, say);
- `errors`: the `postroom.errors` classes the handler can raise (400 for unreadable input, 401
  without credentials and 429 over a rate limit are added where they apply);
- `auth`: "token" (the default), "basic" (HTTP Basic accepted as well) or "public";
- `idempotent`: a POST that creates, which honours an `Idempotency-Key` header
  (`api.middleware.idempotency`).

A handler gets a `Call` and returns a JSON-able value (answered with `status`), None (an empty
answer with `status`), or an aiohttp response it built itself (streams, redirects). The aiohttp
router and the OpenAPI document (`api.openapi`) are both built from these declarations.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import pydantic
from aiohttp import web
from multidict import MultiMapping

from postroom.api.bodies import path_id, read_object, validate
from postroom.api.keys import ACTOR, RUNTIME
from postroom.domain.access import Actor
from postroom.domain.listing import Listing
from postroom.errors import BadRequest, PostroomError
from postroom.runtime import Runtime

API_PREFIX = "/api/v1"
Auth = Literal["token", "basic", "public"]
Handler = Callable[["Call"], Awaitable[Any]]
H = TypeVar("H", bound=Handler)
AiohttpHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_ENDPOINT_ATTR = "postroom_endpoint"


@dataclass(frozen=True)
class Param:
    """One query parameter a handler reads."""

    name: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class Files:
    """A streamed upload body: multipart with file parts (`file_field`, or any part with a file
    name) and the named text `fields`, or — when `raw` — one non-multipart body as the file."""

    fields: Mapping[str, str] = field(default_factory=dict)  # text field → description
    required: tuple[str, ...] = ()
    file_field: str = "content"
    raw: bool = True
    single: bool = False  # exactly one file
    # JSON schemas of text fields that are not plain strings (a JSON object: `{"type": "object"}`)
    schemas: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Download:
    """A file answer: the bytes in one of `media_types`."""

    media_types: tuple[str, ...] = ("application/octet-stream",)
    description: str = "The file."


@dataclass(frozen=True)
class Redirect:
    """A 303 answer whose `Location` names the result."""

    description: str = "See the Location header."


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # the aiohttp template, prefix included ("/api/v1/queues/{id:[0-9]+}")
    handler: Handler
    summary: str
    status: int = 200
    response: Any = None
    body: type[pydantic.BaseModel] | Files | None = None
    form: bool = False
    query: tuple[Param, ...] = ()
    listing: Listing | None = None
    errors: tuple[type[PostroomError], ...] = ()
    auth: Auth = "token"
    also: Mapping[int, Any] = field(default_factory=dict)
    hidden: bool = False  # left out of the OpenAPI document (the docs page's own assets)
    head: bool = True  # a GET answers HEAD too (not an export: HEAD would run it)
    idempotent: bool = False  # a create that honours an Idempotency-Key header


# Every endpoint the application serves, in router order (the OpenAPI document's source).
ENDPOINTS: web.AppKey[tuple[Endpoint, ...]] = web.AppKey("endpoints", tuple)


class Call:
    """One request to an endpoint, as its handler sees it."""

    __slots__ = ("body", "endpoint", "request")

    def __init__(self, request: web.Request, endpoint: Endpoint, body: Any) -> None:
        self.request = request
        self.endpoint = endpoint
        self.body = body

    @property
    def rt(self) -> Runtime:
        return self.request.app[RUNTIME]

    @property
    def actor(self) -> Actor:
        return self.request[ACTOR]

    @property
    def id(self) -> int:
        """The `{id}` of the path (400 unless digits, 404 beyond the largest id)."""
        return path_id(self.request)

    def path_id(self, name: str) -> int:
        return path_id(self.request, name)

    @property
    def query(self) -> MultiMapping[str]:
        return self.request.query


def endpoint_of(handler: Any) -> Endpoint | None:
    """The declaration behind an aiohttp handler built by `Routes`, if any."""
    found = getattr(handler, _ENDPOINT_ATTR, None)
    return found if isinstance(found, Endpoint) else None


def _dumps(value: Any) -> str:
    return json.dumps(value)


def _single_valued(endpoint: Endpoint) -> frozenset[str]:
    """The query parameters the endpoint reads: each takes one value."""
    names = {p.name for p in endpoint.query}
    if endpoint.listing is not None:
        names |= {f.param for f in endpoint.listing.filters} | {"page", "page_size", "ordering"}
    return frozenset(names)


def _refuse_repeated(request: web.Request, names: frozenset[str]) -> None:
    """400 for a parameter given twice (`page_size=1&page_size=x`): which one would count?"""
    query = request.query
    if len(query) == len(set(query.keys())):
        return
    for name in names:
        if len(query.getall(name, ())) > 1:
            raise BadRequest(f"{name}: given more than once (a list is comma-separated).")


def _aiohttp_handler(endpoint: Endpoint) -> AiohttpHandler:
    model = endpoint.body if isinstance(endpoint.body, type) else None
    single = _single_valued(endpoint)

    async def handle(request: web.Request) -> web.StreamResponse:
        _refuse_repeated(request, single)
        body = None
        if model is not None:
            body = validate(model, await read_object(request, allow_form=endpoint.form))
        result = await endpoint.handler(Call(request, endpoint, body))
        if isinstance(result, web.StreamResponse):
            return result
        if result is None:
            return web.Response(status=endpoint.status)
        return web.json_response(result, status=endpoint.status, dumps=_dumps)

    handle.__name__ = endpoint.handler.__name__
    handle.__doc__ = endpoint.handler.__doc__
    setattr(handle, _ENDPOINT_ATTR, endpoint)
    return handle


# Ids in paths are ASCII digits: `/annotations/purge_deleted` is then never `{id}`, and a method
# another resource of the same path lacks answers 405 with the right `Allow`. A `{filename}` holds
# a non-digit, so `/uploads/12` is the upload, not a file called "12".
_PATH_PARAMS = {"id": "[0-9]+", "filename": "[^/]*[^/0-9][^/]*"}


def _constrained(path: str) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        pattern = _PATH_PARAMS.get(name) or ("[0-9]+" if name.endswith("_id") else None)
        return f"{{{name}:{pattern}}}" if pattern else match.group(0)

    return re.sub(r"\{([A-Za-z_]+)\}", one, path)


class Routes:
    """The endpoints of one module, declared with `@routes.get(...)` and friends."""

    def __init__(self, prefix: str = API_PREFIX) -> None:
        self.prefix = prefix
        self.endpoints: list[Endpoint] = []

    def route(self, method: str, path: str, **declared: Any) -> Callable[[H], H]:
        def declare(handler: H) -> H:
            self.add(method, path, handler, **declared)
            return handler

        return declare

    def add(self, method: str, path: str, handler: Handler, **declared: Any) -> Endpoint:
        path = _constrained(path)
        doc = (handler.__doc__ or "").strip()
        summary = declared.pop("summary", None) or (doc.splitlines()[0] if doc else "")
        endpoint = Endpoint(
            method=method,
            path=self.prefix + path,
            handler=handler,
            summary=summary or handler.__name__.replace("_", " "),
            **declared,
        )
        self.endpoints.append(endpoint)
        return endpoint

    def get(self, path: str, **declared: Any) -> Callable[[H], H]:
        return self.route("GET", path, **declared)

    def post(self, path: str, **declared: Any) -> Callable[[H], H]:
        return self.route("POST", path, **declared)

    def put(self, path: str, **declared: Any) -> Callable[[H], H]:
        return self.route("PUT", path, **declared)

    def patch(self, path: str, **declared: Any) -> Callable[[H], H]:
        return self.route("PATCH", path, **declared)

    def delete(self, path: str, **declared: Any) -> Callable[[H], H]:
        return self.route("DELETE", path, **declared)

    def register(self, router: web.UrlDispatcher) -> None:
        for endpoint in self.endpoints:
            handler = _aiohttp_handler(endpoint)
            if endpoint.method == "GET":
                router.add_get(endpoint.path, handler, allow_head=endpoint.head)
            else:
                router.add_route(endpoint.method, endpoint.path, handler)
