"""`/uploads` and `/queues/{id}/upload`: files posted into a queue (streamed through the intake
service; HTTP Basic accepted, so integrations can post with `curl -u`), and uploads read back."""

from __future__ import annotations

from typing import Any

from postroom.api.bodies import query_bool
from postroom.api.keys import intake
from postroom.api.resource_routes import resource_routes
from postroom.api.routing import Call, Files, Param, Routes
from postroom.api.upload_body import RequestBody, closes_when_refused
from postroom.domain.uploads import UPLOADS, QueueUploadJson, UploadJson, UploadTaskJson
from postroom.errors import (
    AccessForbidden,
    BadRequest,
    Conflict,
    ConflictStatus,
    InsufficientStorage,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
    ServiceUnavailable,
)

routes = Routes()
JSON_OBJECT = {"type": "object"}


def values_schema(key_pattern: str) -> dict[str, Any]:
    """`values`: keys matching `key_pattern`, each a string, number, boolean or null."""
    return {
        "type": "object",
        "propertyNames": {"pattern": key_pattern},
        "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
    }


resource_routes(routes, "/uploads", UPLOADS, UploadJson)

UPLOAD_BODY = Files(
    fields={
        "metadata": "A JSON object: the metadata of every annotation created.",
        "values": "A JSON object: `upload:<key>` values offered to the datapoints.",
    },
    schemas={"metadata": JSON_OBJECT, "values": values_schema(".")},
)
# Refusals of any upload: the queue (404, 403, 409), the body (408, 413) and the disk (503, 507).
UPLOAD_ERRORS = (
    NotFound,
    AccessForbidden,
    ConflictStatus,
    RequestTimeout,
    PayloadTooLarge,
    ServiceUnavailable,
    InsufficientStorage,
)


@closes_when_refused
async def upload_to_queue(call: Call) -> QueueUploadJson:
    """Import files into a queue: one (annotation, document) pair per file (deprecated)."""
    return await intake(call.request).upload_to_queue(
        call.actor, call.id, RequestBody(call.request)
    )


@closes_when_refused
async def create_upload(call: Call) -> UploadTaskJson:
    """Upload files into a queue: the task URL, and the results (the records exist already)."""
    raw_queue = call.query.get("queue")
    if not raw_queue:
        raise BadRequest("queue: required query parameter (…/uploads?queue=<id>).")
    queue_id = call.rt.urls.id_from(raw_queue, "queues", "queue")
    reject_identical = query_bool(call.request, "reject_identical")
    return await intake(call.request).create_upload(
        call.actor, queue_id, RequestBody(call.request), reject_identical=reject_identical
    )


for path in ("/queues/{id}/upload", "/queues/{id}/upload/{filename}"):
    routes.add(
        "POST",
        path,
        upload_to_queue,
        auth="basic",
        body=UPLOAD_BODY,
        status=201,
        idempotent=True,
        response=QueueUploadJson,
        errors=UPLOAD_ERRORS,
    )
for path in ("/uploads", "/uploads/{filename}"):
    routes.add(
        "POST",
        path,
        create_upload,
        auth="basic",
        body=UPLOAD_BODY,
        query=(
            Param(
                "queue",
                {"type": "string", "pattern": r"^\s*[1-9][0-9]{0,8}/*\s*$"},
                "The queue (its URL, or its id).",
                required=True,
            ),
            Param(
                "reject_identical",
                {"type": "boolean"},
                "Refuse (409) a file whose bytes and name an existing document has.",
            ),
        ),
        status=202,
        idempotent=True,
        response=UploadTaskJson,
        errors=(*UPLOAD_ERRORS, Conflict),
    )
