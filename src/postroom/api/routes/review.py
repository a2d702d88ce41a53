"""Review actions (`/annotations/{id}/start`, `cancel`, `confirm`, `postpone`, `delete`,
`reject`), `/annotations/purge_deleted` and `/queues/{id}/next`, from `domain.review`."""

from __future__ import annotations

from postroom.api.routing import Call, Routes
from postroom.domain import review
from postroom.domain.review import (
    NextBody,
    PurgeBody,
    RejectBody,
    RejectedJson,
    StartBody,
    StartedJson,
)
from postroom.errors import AccessForbidden, ConflictStatus, NotFound
from postroom.status import AnnotationStatus

ONE = "/annotations/{id}"
CHANGE_ERRORS = (NotFound, AccessForbidden, ConflictStatus)

routes = Routes()


@routes.post(ONE + "/start", body=StartBody, response=StartedJson, errors=CHANGE_ERRORS)
async def start(call: Call) -> StartedJson:
    """Start reviewing an annotation (the caller holds it until confirm or cancel)."""
    return await review.start(call.rt, call.actor, call.id, call.body)


@routes.post(ONE + "/cancel", status=204, errors=CHANGE_ERRORS)
async def cancel(call: Call) -> None:
    """Cancel a review: the annotation returns to the status it was started from."""
    await review.cancel(call.rt, call.actor, call.id)


@routes.post(ONE + "/confirm", status=204, errors=CHANGE_ERRORS)
async def confirm(call: Call) -> None:
    """Confirm a started annotation (then confirmed, or exported by an export job)."""
    await review.confirm(call.rt, call.actor, call.id)


@routes.post(ONE + "/postpone", status=204, errors=CHANGE_ERRORS)
async def postpone(call: Call) -> None:
    """Postpone an annotation."""
    await review.move_to(call.rt, call.actor, call.id, AnnotationStatus.POSTPONED)


@routes.post(ONE + "/delete", status=204, errors=CHANGE_ERRORS)
async def delete(call: Call) -> None:
    """Delete an annotation (it can be restored until it is purged)."""
    await review.move_to(call.rt, call.actor, call.id, AnnotationStatus.DELETED)


@routes.post(ONE + "/reject", body=RejectBody, response=RejectedJson, errors=CHANGE_ERRORS)
async def reject(call: Call) -> RejectedJson:
    """Reject an annotation, with a note."""
    return await review.reject(call.rt, call.actor, call.id, call.body)


@routes.post(
    "/annotations/purge_deleted", body=PurgeBody, status=202, errors=(AccessForbidden, NotFound)
)
async def purge_deleted(call: Call) -> None:
    """Purge deleted annotations (of a queue, or named): their content and files are wiped."""
    await review.purge_deleted(call.rt, call.actor, call.body)


@routes.post(
    "/queues/{id}/next", body=NextBody, response=StartedJson, errors=(AccessForbidden, NotFound)
)
async def next_annotation(call: Call) -> StartedJson:
    """Start the oldest annotation of a queue waiting for review (null when there is none)."""
    return await review.next_annotation(call.rt, call.actor, call.id, call.body)
