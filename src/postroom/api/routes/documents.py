"""`/documents`: list, retrieve, content, create (streamed through the intake service; HTTP
Basic accepted), PATCH metadata, DELETE."""

from __future__ import annotations

from postroom.api.downloads import content_route
from postroom.api.keys import intake
from postroom.api.resource_routes import resource_routes
from postroom.api.routes.uploads import JSON_OBJECT
from postroom.api.routing import Call, Download, Files, Routes
from postroom.api.upload_body import RequestBody, closes_when_refused
from postroom.domain.documents import DOCUMENTS, DocumentJson
from postroom.errors import (
    AccessForbidden,
    InsufficientStorage,
    PayloadTooLarge,
    RequestTimeout,
    ServiceUnavailable,
)

routes = Routes()
resource_routes(routes, "/documents", DOCUMENTS, DocumentJson, edits=("PATCH", "DELETE"))


content_route(
    routes,
    "/documents",
    DOCUMENTS,
    Download(("*/*",), "The original bytes, with the sniffed type and the file name."),
)


@routes.post(
    "/documents",
    auth="basic",
    body=Files(
        fields={
            "metadata": "A JSON object: the document's metadata.",
            "parent": "The URL of the document this one was made from.",
        },
        single=True,
        schemas={"metadata": JSON_OBJECT},
    ),
    status=201,
    idempotent=True,
    response=DocumentJson,
    errors=(
        AccessForbidden,
        RequestTimeout,
        PayloadTooLarge,
        ServiceUnavailable,
        InsufficientStorage,
    ),
)
@closes_when_refused
async def create_document(call: Call) -> DocumentJson:
    """Create a document from one file (multipart `content` or the raw body); no annotation."""
    return await intake(call.request).create_document(call.actor, RequestBody(call.request))
