"""Review: start, cancel, confirm, postpone, delete, reject, purge_deleted, and a queue's `next`.

A reviewer takes an annotation with `start` (or `next`, which picks the oldest one of a queue and
starts it atomically) and holds it while it is `reviewing`; only the holder may confirm it.
Every status change goes through `domain.lifecycle` inside one write transaction that first
reads the annotation (locked on PostgreSQL), so checks and move see the same row.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from typing_extensions import TypedDict

from postroom.clock import utcnow
from postroom.db import tables as t
from postroom.domain import lifecycle
from postroom.domain.access import Actor, require_visible_queue, visible_queues_clause
from postroom.domain.listing import comma_list
from postroom.domain.purge import purge_annotations
from postroom.domain.queues import QUEUES
from postroom.domain.resources import Body, body_schema
from postroom.errors import BadRequest, ConflictStatus, NotFound
from postroom.fields import (
    OPTIONAL_REFERENCE_SCHEMA,
    REFERENCE_SCHEMA,
    OptionalUrl,
    Reference,
)
from postroom.runtime import Runtime
from postroom.status import TRANSITIONS, AnnotationStatus

A = AnnotationStatus
MAX_NOTE_CHARS = 4096
# `next` takes fresh work unless the caller names other statuses; postponed and confirmed
# annotations were put aside on purpose and are started by id.
NEXT_DEFAULT_STATUSES: tuple[AnnotationStatus, ...] = (A.TO_REVIEW,)

a = t.annotations.c


_STATUS_NAMES = sorted(TRANSITIONS)
_STATUSES_SCHEMA = {
    "anyOf": [
        {"type": "array", "items": {"type": "string", "enum": _STATUS_NAMES}},
        {"type": "string", "pattern": comma_list("|".join(_STATUS_NAMES))},
        {"type": "null"},
    ]
}


class StartBody(Body):
    """The statuses `start` may take the annotation from (a list, or names separated by commas)."""

    model_config = Body.model_config | {"json_schema_extra": body_schema(statuses=_STATUSES_SCHEMA)}

    statuses: list[str] | str | None = None


class NextBody(StartBody):
    """`next`: the statuses to pick from, and optionally the only annotations to consider."""

    model_config = Body.model_config | {"json_schema_extra": body_schema(statuses=_STATUSES_SCHEMA)}

    annotation_ids: list[Reference] | None = None


class RejectBody(Body):
    note_content: str | None = None


class PurgeBody(Body):
    """Which deleted annotations to purge: these annotations, and/or every one of this queue."""

    model_config = Body.model_config | {
        "json_schema_extra": body_schema(
            top={
                "anyOf": [
                    {
                        "required": ["annotations"],
                        "properties": {"annotations": {"type": "array", "minItems": 1}},
                    },
                    {"required": ["queue"], "properties": {"queue": REFERENCE_SCHEMA}},
                ]
            },
            queue=OPTIONAL_REFERENCE_SCHEMA,
        )
    }

    annotations: list[Reference] | None = None
    queue: Reference | None = None


class StartedJson(TypedDict):
    """The started annotation (null when `next` found none) and its queue's session timeout."""

    annotation: OptionalUrl
    session_timeout: str


class RejectedJson(TypedDict):
    status: AnnotationStatus
    note: None


async def load_for_change(conn: AsyncConnection, who: Actor, annotation_id: int) -> Any:
    """The annotation with its queue settings and holder, locked, if the actor may see it
    (else 404)."""
    holder = t.users.alias("holder")
    q = t.queues.c
    stmt = (
        sa.select(
            a.id,
            a.status,
            a.previous_status,
            a.modifier_id,
            a.queue_id,
            q.use_confirmed_state,
            q.session_timeout,
            holder.c.username.label("holder_name"),
        )
        .join(t.queues, q.id == a.queue_id)
        .outerjoin(holder, holder.c.id == a.modifier_id)
        .where(
            a.id == annotation_id,
            a.organization_id == who.organization_id,
            visible_queues_clause(who, a.queue_id),
        )
        .with_for_update(of=t.annotations)
    )
    row = (await conn.execute(stmt)).first()
    if row is None:
        raise NotFound(f"Annotation {annotation_id} not found.")
    return row


def refuse_if_held_by_other(row: Any, who: Actor, *, managers_may: bool) -> None:
    """409 when another user is reviewing the annotation (admins/managers may override)."""
    held_by_other = row.status == A.REVIEWING and row.modifier_id not in (None, who.user_id)
    if held_by_other and not (managers_may and who.sees_all_queues):
        raise ConflictStatus(
            f"Annotation {row.id} is being reviewed by {row.holder_name or 'another user'}."
        )


async def start(rt: Runtime, who: Actor, annotation_id: int, body: StartBody) -> StartedJson:
    """Take the annotation for review (409 unless its status is one of `statuses`)."""
    who.require_annotator()
    statuses = lifecycle.START_DEFAULT_STATUSES
    if body.statuses is not None:
        statuses = tuple(lifecycle.parse_statuses(body.statuses, "statuses"))
    async with rt.db.transaction() as conn:
        row = await load_for_change(conn, who, annotation_id)
        if row.status not in statuses:
            raise ConflictStatus(
                f"Annotation {annotation_id} is {row.status}; start accepts {', '.join(statuses)}."
            )
        refuse_if_held_by_other(row, who, managers_may=False)
        await lifecycle.move(
            conn, annotation_id, A.REVIEWING, actor_id=who.user_id, only_from=statuses
        )
    return {
        "annotation": rt.urls.to("annotations", annotation_id),
        "session_timeout": row.session_timeout,
    }


async def cancel(rt: Runtime, who: Actor, annotation_id: int) -> None:
    """Give a started annotation back: it returns to the status it was started from."""
    who.require_annotator()
    async with rt.db.transaction() as conn:
        row = await load_for_change(conn, who, annotation_id)
        if row.status != A.REVIEWING:
            raise ConflictStatus(f"Annotation {annotation_id} is {row.status}; it is not started.")
        refuse_if_held_by_other(row, who, managers_may=True)
        back = row.previous_status
        if back not in TRANSITIONS[A.REVIEWING] or back == A.REVIEWING:
            back = A.TO_REVIEW
        await lifecycle.move(
            conn,
            annotation_id,
            AnnotationStatus(back),
            actor_id=who.user_id,
            only_from=[A.REVIEWING],
        )


def confirmation(user_id: int) -> dict[str, Any]:
    """The columns that record who confirmed an annotation, and when."""
    return {"confirmed_at": utcnow(), "confirmed_by_id": user_id}


async def confirm(rt: Runtime, who: Actor, annotation_id: int) -> None:
    """reviewing → confirmed (queue.use_confirmed_state) or exporting (an export job finishes
    it); either way the confirmation itself is recorded (confirmed_at/by). Only the holder may."""
    who.require_annotator()
    async with rt.db.transaction() as conn:
        row = await load_for_change(conn, who, annotation_id)
        if row.status != A.REVIEWING:
            raise ConflictStatus(
                f"Annotation {annotation_id} is {row.status}; start it before confirming."
            )
        if row.modifier_id != who.user_id:
            raise ConflictStatus(
                f"Annotation {annotation_id} was started by {row.holder_name or 'another user'}; "
                "only that user may confirm it."
            )
        await lifecycle.move(
            conn,
            row.id,
            A.CONFIRMED if row.use_confirmed_state else A.EXPORTING,
            actor_id=who.user_id,
            only_from=[A.REVIEWING],
            where=[a.modifier_id == who.user_id],
            values=confirmation(who.user_id),
        )
    rt.jobs_available.set()


async def move_to(
    rt: Runtime, who: Actor, annotation_id: int, target: AnnotationStatus, **values: Any
) -> None:
    """postpone, delete, reject: the lifecycle's move (409 while another user holds it, unless
    the caller is an admin or manager)."""
    who.require_annotator()
    async with rt.db.transaction() as conn:
        row = await load_for_change(conn, who, annotation_id)
        refuse_if_held_by_other(row, who, managers_may=True)
        await lifecycle.move(conn, annotation_id, target, actor_id=who.user_id, values=values)


async def reject(rt: Runtime, who: Actor, annotation_id: int, body: RejectBody) -> RejectedJson:
    """Reject the annotation, keeping the note (`note_content`) with it."""
    note = body.note_content or ""
    if len(note) > MAX_NOTE_CHARS:
        raise BadRequest(f"note_content: longer than {MAX_NOTE_CHARS} characters.")
    await move_to(rt, who, annotation_id, A.REJECTED, note=note or None)
    return {"status": A.REJECTED, "note": None}


async def change_status(
    conn: AsyncConnection, who: Actor, annotation_id: int, target: AnnotationStatus
) -> None:
    """The status of `PATCH /annotations/{id}` (one of `status.PATCH_TARGETS`): a lifecycle move.
    The same status (a client sending the whole object back) changes nothing; reviewing by
    another user is 409; exporting records the confirmation as the confirm action does."""
    row = await load_for_change(conn, who, annotation_id)
    if row.status == target:
        return
    refuse_if_held_by_other(row, who, managers_may=True)
    values = confirmation(who.user_id) if target == A.EXPORTING else {}
    await lifecycle.move(conn, annotation_id, target, actor_id=who.user_id, values=values)


async def purge_deleted(rt: Runtime, who: Actor, body: PurgeBody) -> None:
    """Purge the deleted annotations named (by id, or by queue): content and bytes are wiped."""
    who.require_manager()
    ids: list[int] = []
    if body.annotations is not None:
        ids = rt.urls.ids_from(body.annotations, "annotations", "annotations")
    queue_id = rt.urls.optional_id_from(body.queue, "queues", "queue")
    if not ids and queue_id is None:
        raise BadRequest("At least one of annotations, queue is required.")
    chosen: list[sa.ColumnElement[bool]] = []
    if ids:
        chosen.append(a.id.in_(ids))
    if queue_id is not None:
        async with rt.db.reading() as conn:
            await require_visible_queue(conn, who, queue_id)
        chosen.append(a.queue_id == queue_id)
    await purge_annotations(
        rt,
        sa.or_(*chosen),
        a.organization_id == who.organization_id,
        visible_queues_clause(who, a.queue_id),
        actor_id=who.user_id,
        only_from=(A.DELETED,),
    )


async def next_annotation(rt: Runtime, who: Actor, queue_id: int, body: NextBody) -> StartedJson:
    """Start the oldest annotation of the queue in one of `statuses` (null when there is none)."""
    who.require_annotator()
    statuses = NEXT_DEFAULT_STATUSES
    if body.statuses is not None:
        statuses = tuple(lifecycle.parse_statuses(body.statuses, "statuses"))
    only_ids: list[int] | None = None
    if body.annotation_ids is not None:
        only_ids = rt.urls.ids_from(body.annotation_ids, "annotations", "annotation_ids")
    async with rt.db.transaction() as conn:
        queue = await QUEUES.load(conn, who, queue_id)
        picked = await _pick_next(conn, who, queue_id, statuses, only_ids)
        if picked is not None:
            await lifecycle.move(
                conn, picked, A.REVIEWING, actor_id=who.user_id, only_from=statuses
            )
    return {
        "annotation": rt.urls.of("annotations", picked),
        "session_timeout": queue.session_timeout,
    }


async def _pick_next(
    conn: AsyncConnection,
    who: Actor,
    queue_id: int,
    statuses: tuple[AnnotationStatus, ...],
    only_ids: list[int] | None,
) -> int | None:
    """The oldest annotation to start; locked and skipped by concurrent callers on PostgreSQL.
    SQLite needs no lock: the write transaction is the only one (BEGIN IMMEDIATE)."""
    startable = [s for s in statuses if A.REVIEWING in TRANSITIONS[s]]
    if not startable:
        return None
    stmt = (
        sa.select(a.id)
        .where(
            a.queue_id == queue_id,
            a.organization_id == who.organization_id,
            a.status.in_(startable),
            # Never hand out what someone else is reviewing.
            sa.or_(a.status != A.REVIEWING, a.modifier_id == who.user_id),
        )
        .order_by(a.arrived_at, a.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if only_ids is not None:
        stmt = stmt.where(a.id.in_(only_ids))
    found = (await conn.execute(stmt)).scalar_one_or_none()
    return None if found is None else int(found)
