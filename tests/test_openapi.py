"""The OpenAPI document (generated from router + models) and the bundled docs page, over real HTTP."""

from __future__ import annotations

from typing import Any

import aiohttp
import pydantic
import schemathesis
from aiohttp import web

from postroom.clock import iso
from postroom.web.bodies import query_bool, read_object, validate
from postroom.web.listing import Filter, paginate
from postroom.web.openapi import build_document, operation
from tests.conftest import Api


async def _document(http: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    async with http.get(base + "/api/v1/openapi.json") as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        return await response.json()  # type: ignore[no-any-return]


async def test_document_is_public_and_covers_every_route(
    server: Any, http: aiohttp.ClientSession
) -> None:
    """Without credentials the document lists every method+path the router serves (docs assets aside)."""
    document = await _document(http, server.base)
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": server.base}]
    app = server.service._runner.app
    served = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.method not in ("HEAD", "*") and route.resource is not None
    }
    documented = {(m, p) for p, ops in document["paths"].items() for m in ops}
    missing = served - documented - {("get", "/api/docs/{asset}")}
    assert not missing, missing
    assert ("get", "/api/v1/health") in documented and ("get", "/metrics") in documented


async def test_every_operation_declares_the_error_schema_and_rate_limit(
    server: Any, http: aiohttp.ClientSession
) -> None:
    """Each operation lists 400/401/404/429 with the {detail, code} schema and Retry-After on 429."""
    document = await _document(http, server.base)
    error = document["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"detail", "code"}
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            for code in ("400", "401", "404", "429"):
                schema = op["responses"][code]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, code)
            assert "Retry-After" in op["responses"]["429"]["headers"], (method, path)


async def test_auth_markers_become_security_requirements(
    server: Any, http: aiohttp.ClientSession
) -> None:
    """Public routes need nothing, ordinary routes a bearer token (the document default)."""
    document = await _document(http, server.base)
    assert document["paths"]["/api/v1/health"]["get"]["security"] == []
    assert document["paths"]["/api/v1/auth/login"]["post"]["security"] == []
    assert "security" not in document["paths"]["/api/v1/auth/user"]["get"]
    assert document["security"] == [{"bearer": []}]
    assert set(document["components"]["securitySchemes"]) == {"bearer", "basic"}


async def test_schemathesis_loads_every_operation(server: Any, http: aiohttp.ClientSession) -> None:
    """The document is valid enough for schemathesis to build every operation from it."""
    document = await _document(http, server.base)
    schema = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in schema.get_all_operations()]
    count = sum(len(ops) for ops in document["paths"].values())
    assert len(operations) == count


class Widget(pydantic.BaseModel):
    name: str = pydantic.Field(max_length=20)
    size: int = 1


WIDGET_FILTERS = (Filter("name", None, "str"), Filter("id", None))


def render_widget(urls: Any, row: Any) -> dict[str, Any]:
    body = {
        "id": row.id,
        "url": urls.to("widgets", row.id),
        "owner": urls.of("users", row.owner_id),
        "created_at": iso(row.created_at),
        "tags": row.tags or [],
        "active": bool(row.active),
        "note": None,
    }
    if row.archived:
        body["archived_by"] = urls.to("users", row.archived_by)
    return body


async def _create_widget(request: web.Request) -> web.Response:
    body = validate(Widget, await read_object(request))
    return web.json_response(render_widget(None, body), status=201)


async def list_widgets(request: web.Request) -> web.Response:
    """List widgets."""
    assert WIDGET_FILTERS and paginate
    query_bool(request, "archived")
    return web.json_response({})


async def create_widget(request: web.Request) -> web.Response:
    """Create a widget."""
    return await _create_widget(request)


@operation(summary="Stated summary.", responses={202: "Queued."}, response_media=("text/csv",))
async def export_widgets(request: web.Request) -> web.Response:
    return web.Response(text="a,b\n", content_type="text/csv", status=202)


def test_generator_reads_models_filters_and_statuses_from_handler_code() -> None:
    """Body models, filters, query reads, pagination and status codes come from the handlers' own code."""
    app = web.Application()
    app.router.add_get("/api/v1/widgets", list_widgets)
    app.router.add_post("/api/v1/widgets", create_widget)
    app.router.add_post("/api/v1/widgets/{id}/export", export_widgets)
    document = build_document(app, "http://example.test", "1")
    listing = document["paths"]["/api/v1/widgets"]["get"]
    params = {p["name"]: p["schema"]["type"] for p in listing["parameters"]}
    assert params == {
        "name": "string",
        "id": "string",
        "archived": "boolean",
        "page": "integer",
        "page_size": "integer",
        "ordering": "string",
    }
    page_schema = listing["responses"]["200"]["content"]["application/json"]["schema"]
    assert page_schema == {"$ref": "#/components/schemas/Page"}
    assert listing["summary"] == "List widgets."

    create = document["paths"]["/api/v1/widgets"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Widget"
    }
    widget = document["components"]["schemas"]["Widget"]
    assert widget["properties"]["name"]["maxLength"] == 20
    assert "201" in create["responses"] and "200" not in create["responses"]
    created = create["responses"]["201"]["content"]["application/json"]["schema"]
    assert created == {"$ref": "#/components/schemas/WidgetObject"}  # "Widget" is the body
    shape = document["components"]["schemas"]["WidgetObject"]
    assert shape["required"] == ["id", "url", "owner", "created_at", "tags", "active", "note"]
    assert shape["properties"]["id"] == {"type": "integer"}
    assert shape["properties"]["url"] == {"type": "string", "format": "uri"}
    assert shape["properties"]["owner"]["type"] == ["string", "null"]
    assert shape["properties"]["created_at"]["format"] == "date-time"
    assert shape["properties"]["tags"] == {"type": "array"}
    assert shape["properties"]["active"] == {"type": "boolean"}
    assert shape["properties"]["note"] == {"type": "null"}
    assert "archived_by" in shape["properties"] and "archived_by" not in shape["required"]

    export = document["paths"]["/api/v1/widgets/{id}/export"]["post"]
    assert export["summary"] == "Stated summary."
    assert export["parameters"][0] == {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
    assert list(export["responses"]["202"]["content"]) == ["text/csv"]


async def test_docs_page_and_its_assets_are_served_locally(
    server: Any, anon: Api, http: aiohttp.ClientSession
) -> None:
    """/api/docs is an HTML page whose scripts and styles all come from this server."""
    async with http.get(server.base + "/api/docs") as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        page = await response.text()
    assert "swagger-ui" in page
    assert "http://" not in page and "https://" not in page
    for asset, kind in (
        ("swagger-ui-bundle.js", "application/javascript"),
        ("swagger-ui.css", "text/css"),
        ("postroom-docs.js", "application/javascript"),
    ):
        assert f"/api/docs/{asset}" in page
        async with http.get(f"{server.base}/api/docs/{asset}") as response:
            assert response.status == 200, asset
            assert response.content_type == kind
            assert len(await response.read()) > 10
    status, body = await anon.get(server.base + "/api/docs/..%2Fsecret")
    assert status == 404 and body["code"] == "not_found"


async def test_documented_object_schemas_match_live_responses(
    server: Any, admin: Api, http: aiohttp.ClientSession
) -> None:
    """The Queue and User schemas read from their renderers list exactly the keys the API returns."""
    document = await _document(http, server.base)
    schemas = document["components"]["schemas"]
    for path, name in (("/queues/1", "Queue"), ("/users/1", "User")):
        _, body = await admin.get(path, expect=200)
        assert set(schemas[name]["required"]) <= set(body), name
        assert set(body) <= set(schemas[name]["properties"]), name
    listing = document["paths"]["/api/v1/queues"]["get"]["responses"]["200"]
    items = listing["content"]["application/json"]["schema"]["properties"]["results"]["items"]
    assert items == {"$ref": "#/components/schemas/Queue"}
