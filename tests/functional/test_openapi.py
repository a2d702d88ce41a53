"""The OpenAPI document (generated from the endpoint declarations) and the bundled docs page."""

from __future__ import annotations

from typing import Any

import aiohttp
import pydantic
import schemathesis
from openapi_spec_validator import validate as validate_spec
from typing_extensions import TypedDict

from postroom.api.openapi import build_document
from postroom.api.routing import Call, Download, Files, Redirect, Routes, endpoint_of
from postroom.console import is_console_route
from postroom.domain.listing import Filter, Listing
from postroom.errors import AccessForbidden, PayloadTooLarge
from postroom.fields import OptionalUrl, Timestamp, Url
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
        if route.method not in ("HEAD", "*")
        and route.resource is not None
        and not is_console_route(route)
    }
    documented = {(m, p) for p, ops in document["paths"].items() for m in ops}
    missing = served - documented - {("get", "/api/docs/{asset}")}
    assert not missing, missing
    assert ("get", "/api/v1/health") in documented and ("get", "/metrics") in documented


async def test_every_operation_lists_its_own_errors_with_the_error_schema(
    server: Any, http: aiohttp.ClientSession
) -> None:
    """Errors use the {detail, code} schema; 401 and 429 appear where they apply, and only the
    errors an endpoint declares appear (a GET of one object cannot answer 403 or 409)."""
    document = await _document(http, server.base)
    error = document["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"detail", "code"}
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            codes = {int(c) for c in op["responses"]}
            errors = codes - set(range(200, 400)) - ({503} if path == "/api/v1/health" else set())
            for code in errors:
                schema = op["responses"][str(code)]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, code)
            if op.get("security") != []:
                assert 401 in codes, (method, path)
            if path != "/api/v1/health":
                assert "Retry-After" in op["responses"]["429"]["headers"], (method, path)
    one = document["paths"]["/api/v1/workspaces/{id}"]
    # 405: the path could name another resource (`/uploads/<file name>` next to `/uploads/{id}`).
    assert set(one["get"]["responses"]) == {"200", "400", "401", "404", "405", "429"}
    assert {"403", "404", "409"} <= set(one["patch"]["responses"])
    assert "413" not in one["patch"]["responses"]
    health = document["paths"]["/api/v1/health"]["get"]["responses"]
    assert set(health) == {"200", "503"}


async def test_every_route_is_declared_and_the_document_is_valid_openapi_3_1(
    server: Any, http: aiohttp.ClientSession
) -> None:
    """No route is served without a declaration, and the document passes the 3.1 validator."""
    app = server.service._runner.app
    undeclared = [
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD"
        and endpoint_of(route.handler) is None
        and not is_console_route(route)
    ]
    assert not undeclared
    validate_spec(await _document(http, server.base))


async def test_upload_endpoints_document_multipart_and_raw_bodies(
    server: Any, http: aiohttp.ClientSession
) -> None:
    """Both upload endpoints take multipart file parts (with metadata/values) or a raw body."""
    document = await _document(http, server.base)
    for path in ("/api/v1/queues/{id}/upload", "/api/v1/uploads"):
        content = document["paths"][path]["post"]["requestBody"]["content"]
        form = content["multipart/form-data"]["schema"]
        assert form["properties"]["content"]["items"] == {
            "type": "string",
            "format": "binary",
            "minLength": 1,
        }
        assert form["properties"]["metadata"]["type"] == "object"
        encoding = content["multipart/form-data"]["encoding"]
        assert encoding["metadata"] == {"contentType": "application/json"}
        assert {"metadata", "values"} <= set(form["properties"])
        assert content["application/octet-stream"]["schema"]["format"] == "binary"
        assert "application/json" not in content
    named = document["paths"]["/api/v1/uploads/{filename}"]["post"]["parameters"]
    assert {
        "name": "filename",
        "in": "path",
        "required": True,
        # A file name holds a non-digit: `/uploads/12` is upload 12.
        "schema": {"type": "string", "minLength": 1, "pattern": "^[^/]*[^/0-9][^/]*$"},
    } in named


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


class WidgetBody(pydantic.BaseModel):
    name: str = pydantic.Field(max_length=20)
    size: int = 1


class WidgetJson(TypedDict):
    id: int
    url: Url
    owner: OptionalUrl
    created_at: Timestamp
    tags: list[str]
    active: bool


WIDGETS = Listing(filters=(Filter("name", None, "str"), Filter("id", None)), ordering={"id": None})


def _declared_routes() -> Routes:
    routes = Routes()

    @routes.get("/widgets", response=WidgetJson, listing=WIDGETS)
    async def list_widgets(call: Call) -> None:
        """List widgets."""

    @routes.post(
        "/widgets", body=WidgetBody, status=201, response=WidgetJson, errors=(AccessForbidden,)
    )
    async def create_widget(call: Call) -> None:
        """Create a widget."""

    @routes.post(
        "/widgets/{id}/files",
        body=Files(fields={"note": "A JSON object."}),
        auth="basic",
        status=202,
        response=None,
        also={303: Redirect()},
        errors=(PayloadTooLarge,),
    )
    async def add_files(call: Call) -> None:
        """Attach files."""

    @routes.get("/widgets/{id}/export", response=Download(("text/csv",)), auth="public")
    async def export_widgets(call: Call) -> None:
        """Export."""

    return routes


def test_generator_documents_exactly_what_the_endpoints_declare() -> None:
    """Bodies, listings, answers, errors and auth in the document come from the declarations."""
    document = build_document(_declared_routes().endpoints, "http://example.test", "1")
    listing = document["paths"]["/api/v1/widgets"]["get"]
    params = {p["name"]: p["schema"]["type"] for p in listing["parameters"]}
    assert params == {
        "name": "string",
        "id": "string",
        "page": "integer",
        "page_size": "integer",
        "ordering": "string",
    }
    page = listing["responses"]["200"]["content"]["application/json"]["schema"]
    assert page["properties"]["results"]["items"] == {"$ref": "#/components/schemas/Widget"}
    assert listing["summary"] == "List widgets."
    assert set(listing["responses"]) == {"200", "400", "401", "429"}

    create = document["paths"]["/api/v1/widgets"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/WidgetBody"
    }
    assert set(create["responses"]) == {"201", "400", "401", "403", "429"}
    body = document["components"]["schemas"]["WidgetBody"]
    assert body["properties"]["name"]["maxLength"] == 20
    shape = document["components"]["schemas"]["Widget"]
    assert set(shape["required"]) == {"id", "url", "owner", "created_at", "tags", "active"}
    assert shape["properties"]["url"]["format"] == "uri"
    assert shape["properties"]["owner"]["type"] == ["string", "null"]
    assert shape["properties"]["created_at"]["format"] == "date-time"

    files = document["paths"]["/api/v1/widgets/{id}/files"]["post"]
    form = files["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert set(form["properties"]) == {"content", "note"}
    assert files["security"] == [{"bearer": []}, {"basic": []}]
    assert files["parameters"][0] == {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
    }
    assert set(files["responses"]) == {"202", "303", "400", "401", "405", "413", "429"}
    assert "Location" in files["responses"]["303"]["headers"]
    assert "content" not in files["responses"]["202"]

    export = document["paths"]["/api/v1/widgets/{id}/export"]["get"]
    assert export["security"] == []
    assert list(export["responses"]["200"]["content"]) == ["text/csv"]
    assert "401" not in export["responses"]


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
    """The Queue and User schemas (their TypedDicts) list exactly the keys the API returns."""
    document = await _document(http, server.base)
    schemas = document["components"]["schemas"]
    for path, name in (("/queues/1", "Queue"), ("/users/1", "User")):
        _, body = await admin.get(path, expect=200)
        assert set(schemas[name]["required"]) <= set(body), name
        assert set(body) <= set(schemas[name]["properties"]), name
    listing = document["paths"]["/api/v1/queues"]["get"]["responses"]["200"]
    items = listing["content"]["application/json"]["schema"]["properties"]["results"]["items"]
    assert items == {"$ref": "#/components/schemas/Queue"}
