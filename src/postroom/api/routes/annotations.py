"""`/annotations`: list (filters, ordering, `sideload`, `fields`), retrieve, PATCH and the
content tree, from `domain.annotations`."""

from __future__ import annotations

from typing import Any

from postroom.api.pagination import envelope, page_request
from postroom.api.routing import Call, Param, Routes
from postroom.domain.annotations import (
    LISTING,
    AnnotationChange,
    AnnotationJson,
    ContentJson,
    content,
    list_annotations,
    retrieve_annotation,
    update_annotation,
)
from postroom.errors import AccessForbidden, ConflictStatus, NotFound

ONE = "/annotations/{id}"
FIELDS = (
    Param("fields", description="Comma list of the attributes to keep."),
    Param("fields!", description="Comma list of the attributes to leave out."),
)

routes = Routes()


@routes.get(
    "/annotations",
    response=AnnotationJson,
    listing=LISTING,
    query=(
        Param(
            "sideload", description="Comma list of related objects to add (content, documents…)."
        ),
        Param("content.schema_id", description="Comma list: the sideloaded datapoints to keep."),
        *FIELDS,
    ),
)
async def list_all(call: Call) -> dict[str, Any]:
    """List annotations."""
    request = page_request(call.query)
    page, related = await list_annotations(call.rt, call.actor, call.query, request)
    return {**envelope(call.request, call.rt.urls.base, page), **related}


@routes.get(ONE, response=AnnotationJson, query=FIELDS, errors=(NotFound,))
async def retrieve(call: Call) -> dict[str, Any]:
    """Retrieve an annotation."""
    return await retrieve_annotation(call.rt, call.actor, call.id, call.query)


@routes.patch(
    ONE,
    body=AnnotationChange,
    response=AnnotationJson,
    errors=(NotFound, AccessForbidden, ConflictStatus),
)
async def update(call: Call) -> AnnotationJson:
    """Update an annotation's metadata and/or status."""
    return await update_annotation(call.rt, call.actor, call.id, call.body)


@routes.get(ONE + "/content", response=ContentJson, errors=(NotFound,))
async def annotation_content(call: Call) -> ContentJson:
    """The content tree (empty while the annotation is still importing)."""
    return await content(call.rt, call.actor, call.id)
