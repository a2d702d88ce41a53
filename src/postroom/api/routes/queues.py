"""`/queues`: the collection endpoints of `domain.queues`, scheduled deletion, from_template,
duplicate and related_objects_counts.

The queue's upload, export, next and suggested_recipients endpoints live with their own features.
"""

from __future__ import annotations

from postroom.api.resource_routes import resource_routes
from postroom.api.routing import Call, Param, Routes
from postroom.domain import queue_copies, queue_deletion, queues
from postroom.domain.queue_bodies import DuplicateBody, FromTemplateBody
from postroom.domain.queues import QUEUES, QueueJson, RelatedCountsJson
from postroom.durations import DURATION_PATTERN
from postroom.errors import AccessForbidden, Conflict, ConflictStatus, NotFound

ONE = r"/queues/{id:[0-9]+}"

routes = Routes()
resource_routes(
    routes, "/queues", QUEUES, QueueJson, id_pattern=r":[0-9]+", edits=("POST", "PUT", "PATCH")
)


@routes.delete(
    ONE,
    status=202,
    query=(
        Param(
            "delete_after",
            {"type": "string", "pattern": DURATION_PATTERN + "|^$"},
            description="Delay before the queue is deleted, HH:MM:SS (default 24:00:00).",
        ),
    ),
    errors=(NotFound, AccessForbidden, ConflictStatus),
)
async def delete_queue(call: Call) -> None:
    """Schedule the deletion of a queue (a background duty deletes it after `delete_after`)."""
    delete_after = call.query.get("delete_after", "")
    await queue_deletion.schedule_deletion(call.rt, call.actor, call.id, delete_after)


@routes.get(ONE + "/related_objects_counts", response=RelatedCountsJson, errors=(NotFound,))
async def related_objects_counts(call: Call) -> RelatedCountsJson:
    """Count the emails, annotations and documents of a queue."""
    return await queues.related_counts(call.rt, call.actor, call.id)


@routes.post(
    "/queues/from_template",
    body=FromTemplateBody,
    status=201,
    idempotent=True,
    response=QueueJson,
    errors=(AccessForbidden, Conflict),
)
async def create_from_template(call: Call) -> QueueJson:
    """Create a queue (with its schema and inbox) from a shipped template."""
    return await queue_copies.create_from_template(call.rt, call.actor, call.body)


@routes.post(
    ONE + "/duplicate",
    body=DuplicateBody,
    status=201,
    idempotent=True,
    response=QueueJson,
    errors=(NotFound, AccessForbidden, Conflict),
)
async def duplicate_queue(call: Call) -> QueueJson:
    """Duplicate a queue (with its own schema and inbox)."""
    return await queue_copies.duplicate(call.rt, call.actor, call.id, call.body)
