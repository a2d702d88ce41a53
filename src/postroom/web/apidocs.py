"""`GET /api/v1/openapi.json` (the generated contract) and `GET /api/docs` (Swagger UI, bundled).

Both are public: the contract is what an integrator reads before having an account. The viewer's
assets come from the `swagger-ui-bundle` package installed with Postroom, served from a fixed
allow-list of file names (never a path built from the request), so the page works offline and
loads nothing from a CDN.
"""

from __future__ import annotations

import json
import weakref
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from aiohttp import web
from swagger_ui_bundle import swagger_ui_path

from postroom.errors import NotFound
from postroom.web.auth import public
from postroom.web.keys import services
from postroom.web.openapi import build_document, hidden, operation

routes = web.RouteTableDef()

# The router is frozen once serving, so each application's document is built once.
_DOCUMENTS: weakref.WeakKeyDictionary[web.Application, bytes] = weakref.WeakKeyDictionary()
ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "application/javascript",
    "swagger-ui-standalone-preset.js": "application/javascript",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Postroom API</title>
  <link rel="stylesheet" href="/api/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/api/docs/favicon-32x32.png" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/api/docs/swagger-ui-bundle.js"></script>
  <script src="/api/docs/swagger-ui-standalone-preset.js"></script>
  <script src="/api/docs/postroom-docs.js"></script>
</body>
</html>
"""
# Inline scripts would need a laxer Content-Security-Policy; the start-up call is its own asset.
_START = """window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/api/v1/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout",
    validatorUrl: null
  });
};
"""
_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'"


def _postroom_version() -> str:
    try:
        return version("postroom")
    except PackageNotFoundError:
        return "0"


@routes.get("/api/v1/openapi.json")
@public
@operation(responses={200: "The document."}, response_media=("application/json",))
async def openapi_document(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of this API (generated from the router and the models)."""
    app = request.app
    body = _DOCUMENTS.get(app)
    if body is None:
        document = build_document(app, services(request).urls.base, _postroom_version())
        body = _DOCUMENTS[app] = json.dumps(document, indent=1).encode()
    return web.Response(body=body, content_type="application/json")


@routes.get("/api/docs")
@public
@operation(responses={200: "An HTML page."}, response_media=("text/html",))
async def docs_page(request: web.Request) -> web.Response:
    """Browsable API documentation (Swagger UI, served from the installed package)."""
    response = web.Response(text=_PAGE, content_type="text/html")
    response.headers["Content-Security-Policy"] = _CSP
    return response


@routes.get("/api/docs/{asset}")
@public
@hidden
async def docs_asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["asset"]
    if name == "postroom-docs.js":
        return web.Response(text=_START, content_type="application/javascript")
    if name not in ASSETS:
        raise NotFound(f"No documentation asset {name!r}.")
    path = Path(str(swagger_ui_path)) / name
    response = web.FileResponse(path, headers={"Content-Type": ASSETS[name]})
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response
