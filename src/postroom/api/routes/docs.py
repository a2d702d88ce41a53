"""`GET /api/v1/openapi.json` (the generated contract) and `GET /api/docs` (Swagger UI, bundled).

Both are public: the contract is what an integrator reads before having an account. The viewer's
assets come from the `swagger-ui-bundle` package installed with Postroom, served from a fixed
allow-list of file names (never a path built from the request), so the page works offline and
loads nothing from a CDN.
"""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web
from swagger_ui_bundle import swagger_ui_path

from postroom import __version__
from postroom.api.keys import RUNTIME
from postroom.api.openapi import build_document
from postroom.api.routing import ENDPOINTS, Call, Download, Endpoint, Routes
from postroom.errors import NotFound

routes = Routes(prefix="")
_DOCUMENT: web.AppKey[bytes] = web.AppKey("openapi_document")
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


def prepare_document(app: web.Application) -> None:
    """Build the document once, when the application is assembled (its routes are final)."""
    endpoints: tuple[Endpoint, ...] = app[ENDPOINTS]
    document = build_document(endpoints, app[RUNTIME].urls.base, __version__)
    app[_DOCUMENT] = json.dumps(document, indent=1).encode()


@routes.get(
    "/api/v1/openapi.json", auth="public", response=Download(("application/json",), "The document.")
)
async def openapi_document(call: Call) -> web.Response:
    """The OpenAPI 3.1 document of this API (generated from the endpoint declarations)."""
    return web.Response(body=call.request.app[_DOCUMENT], content_type="application/json")


@routes.get("/api/docs", auth="public", response=Download(("text/html",), "An HTML page."))
async def docs_page(call: Call) -> web.Response:
    """Browsable API documentation (Swagger UI, served from the installed package)."""
    response = web.Response(text=_PAGE, content_type="text/html")
    response.headers["Content-Security-Policy"] = _CSP
    return response


@routes.get("/api/docs/{asset}", auth="public", hidden=True, errors=(NotFound,))
async def docs_asset(call: Call) -> web.StreamResponse:
    """A static asset of the documentation page (from a fixed allow-list of names)."""
    name = call.request.match_info["asset"]
    if name == "postroom-docs.js":
        return web.Response(text=_START, content_type="application/javascript")
    if name not in ASSETS:
        raise NotFound(f"No documentation asset {name!r}.")
    path = Path(str(swagger_ui_path)) / name
    response = web.FileResponse(path, headers={"Content-Type": ASSETS[name]})
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response
