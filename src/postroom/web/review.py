"""REST endpoints of review: start, cancel, confirm, postpone, delete, reject, purge, and `next`.

A reviewer takes an annotation with `start` (or `POST /queues/{id}/next`, which picks the oldest
one and starts it atomically) and holds it while it is `reviewing`; only the holder may confirm
it. Every status change goes through `postroom.lifecycle` inside one write transaction that first
reads the annotation (locked on PostgreSQL), so checks and move see the same row.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom import lifecycle
from postroom.clock import utcnow
from postroom.db import tables as t
from postroom.errors import BadRequest, ConflictStatus, NotFound
from postroom.permissions import Actor, require_visible_queue, visible_queues_clause
from postroom.purge import purge_annotations
from postroom.web.bodies import path_id, read_object
from postroom.web.keys import actor, services

routes = web.RouteTableDef()

MAX_NOTE_CHARS = 4096
# `next` takes fresh work unless the caller names other statuses; postponed and confirmed
# annotations were put aside on purpose and are started by id.
NEXT_DEFAULT_STATUSES: tuple[str, ...] = ("to_review",)

a = t.annotations.c
q = t.queues.c


async def load_for_change(
    conn: AsyncConnection, who: Actor, annotation_id: int, *, lock: bool
) -> Any:
    """The annotation with its queue settings and holder, if the actor may see it (else 404)."""
    holder = t.users.alias("holder")
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
    )
    if lock:
        stmt = stmt.with_for_update(of=t.annotations)
    row = (await conn.execute(stmt)).first()
    if row is None:
        raise NotFound(f"Annotation {annotation_id} not found.")
    return row


def _held_by_other(row: Any, who: Actor) -> bool:
    return row.status == "reviewing" and row.modifier_id not in (None, who.user_id)


def refuse_if_held_by_other(row: Any, who: Actor, *, managers_may: bool) -> None:
    """409 when another user is reviewing the annotation (admins/managers may override)."""
    if _held_by_other(row, who) and not (managers_may and who.sees_all_queues):
        raise ConflictStatus(
            f"Annotation {row.id} is being reviewed by {row.holder_name or 'another user'}."
        )


async def _change(request: web.Request) -> tuple[Actor, int]:
    who = actor(request)
    who.require_annotator()
    return who, path_id(request)


@routes.post("/api/v1/annotations/{id}/start")
async def start(request: web.Request) -> web.Response:
    who, annotation_id = await _change(request)
    body = await read_object(request)
    statuses = lifecycle.START_DEFAULT_STATUSES
    if body.get("statuses") is not None:
        statuses = tuple(lifecycle.parse_statuses(body["statuses"], "statuses"))
    svc = services(request)
    async with svc.db.transaction() as conn:
        row = await load_for_change(conn, who, annotation_id, lock=svc.db.is_postgres)
        if row.status not in statuses:
            raise ConflictStatus(
                f"Annotation {annotation_id} is {row.status}; start accepts {', '.join(statuses)}."
            )
        refuse_if_held_by_other(row, who, managers_may=False)
        await lifecycle.move(
            conn, annotation_id, "reviewing", actor_id=who.user_id, only_from=statuses
        )
    return web.json_response(
        {
            "annotation": svc.urls.to("annotations", annotation_id),
            "session_timeout": row.session_timeout,
        }
    )


@routes.post("/api/v1/annotations/{id}/cancel")
async def cancel(request: web.Request) -> web.Response:
    who, annotation_id = await _change(request)
    svc = services(request)
    async with svc.db.transaction() as conn:
        row = await load_for_change(conn, who, annotation_id, lock=svc.db.is_postgres)
        if row.status != "reviewing":
            raise ConflictStatus(f"Annotation {annotation_id} is {row.status}; it is not started.")
        refuse_if_held_by_other(row, who, managers_may=True)
        back = row.previous_status
        if back not in lifecycle.TRANSITIONS["reviewing"] or back == "reviewing":
            back = "to_review"
        await lifecycle.move(
            conn, annotation_id, back, actor_id=who.user_id, only_from=["reviewing"]
        )
    return web.Response(status=204)


@routes.post("/api/v1/annotations/{id}/confirm")
async def confirm(request: web.Request) -> web.Response:
    who, annotation_id = await _change(request)
    svc = services(request)
    async with svc.db.transaction() as conn:
        row = await load_for_change(conn, who, annotation_id, lock=svc.db.is_postgres)
        if row.status != "reviewing":
            raise ConflictStatus(
                f"Annotation {annotation_id} is {row.status}; start it before confirming."
            )
        if row.modifier_id != who.user_id:
            raise ConflictStatus(
                f"Annotation {annotation_id} was started by {row.holder_name or 'another user'}; "
                "only that user may confirm it."
            )
        await confirm_started(conn, row, who.user_id)
    svc.jobs_available.set()
    return web.Response(status=204)


async def confirm_started(conn: AsyncConnection, row: Any, user_id: int) -> None:
    """reviewing → confirmed (queue.use_confirmed_state) or exporting (an export job finishes it);
    either way the confirmation itself is recorded (confirmed_at/by)."""
    target = "confirmed" if row.use_confirmed_state else "exporting"
    await lifecycle.move(
        conn,
        row.id,
        target,
        actor_id=user_id,
        only_from=["reviewing"],
        where=[a.modifier_id == user_id],
        values=confirmation(user_id),
    )


def confirmation(user_id: int) -> dict[str, Any]:
    return {"confirmed_at": utcnow(), "confirmed_by_id": user_id}


async def _simple_move(request: web.Request, target: str, **values: Any) -> None:
    who, annotation_id = await _change(request)
    svc = services(request)
    async with svc.db.transaction() as conn:
        row = await load_for_change(conn, who, annotation_id, lock=svc.db.is_postgres)
        refuse_if_held_by_other(row, who, managers_may=True)
        await lifecycle.move(conn, annotation_id, target, actor_id=who.user_id, values=values)


@routes.post("/api/v1/annotations/{id}/postpone")
async def postpone(request: web.Request) -> web.Response:
    await _simple_move(request, "postponed")
    return web.Response(status=204)


@routes.post("/api/v1/annotations/{id}/delete")
async def delete(request: web.Request) -> web.Response:
    await _simple_move(request, "deleted")
    return web.Response(status=204)


@routes.post("/api/v1/annotations/{id}/reject")
async def reject(request: web.Request) -> web.Response:
    body = await read_object(request)
    note = body.get("note_content", "")
    if note is None:
        note = ""
    if not isinstance(note, str):
        raise BadRequest("note_content: expected a string.")
    if len(note) > MAX_NOTE_CHARS:
        raise BadRequest(f"note_content: longer than {MAX_NOTE_CHARS} characters.")
    await _simple_move(request, "rejected", note=note or None)
    return web.json_response({"status": "rejected", "note": None})


async def change_status(conn: AsyncConnection, who: Actor, annotation_id: int, target: Any) -> None:
    """The status branch of `PATCH /annotations/{id}`: a lifecycle move the reference allows."""
    who.require_annotator()
    if not isinstance(target, str) or target not in lifecycle.TRANSITIONS:
        raise BadRequest(f"status: unknown status {target!r}.")
    if target not in lifecycle.PATCH_TARGETS:
        raise BadRequest(
            f"status: {target} cannot be set directly; use the annotation's actions "
            "(start, purge_deleted, …)."
        )
    row = await load_for_change(conn, who, annotation_id, lock=conn.dialect.name == "postgresql")
    if row.status == target:
        return
    refuse_if_held_by_other(row, who, managers_may=True)
    values = confirmation(who.user_id) if target == "exporting" else {}
    await lifecycle.move(conn, annotation_id, target, actor_id=who.user_id, values=values)


@routes.post("/api/v1/annotations/purge_deleted")
async def purge_deleted(request: web.Request) -> web.Response:
    who = actor(request)
    who.require_manager()
    svc = services(request)
    body = await read_object(request)
    ids: list[int] = []
    if body.get("annotations") is not None:
        ids = svc.urls.ids_from(body["annotations"], "annotations", "annotations")
    queue_id = svc.urls.optional_id_from(body.get("queue"), "queues", "queue")
    if not ids and queue_id is None:
        raise BadRequest("At least one of annotations, queue is required.")
    chosen = []
    if ids:
        chosen.append(a.id.in_(ids))
    if queue_id is not None:
        async with svc.db.reading() as conn:
            await require_visible_queue(conn, who, queue_id)
        chosen.append(a.queue_id == queue_id)
    await purge_annotations(
        svc,
        sa.or_(*chosen),
        a.organization_id == who.organization_id,
        visible_queues_clause(who, a.queue_id),
        actor_id=who.user_id,
        only_from=("deleted",),
    )
    return web.Response(status=202)


@routes.post("/api/v1/queues/{id}/next")
async def next_annotation(request: web.Request) -> web.Response:
    who = actor(request)
    who.require_annotator()
    queue_id = path_id(request)
    svc = services(request)
    body = await read_object(request)
    statuses = NEXT_DEFAULT_STATUSES
    if body.get("statuses") is not None:
        statuses = tuple(lifecycle.parse_statuses(body["statuses"], "statuses"))
    only_ids: list[int] | None = None
    if body.get("annotation_ids") is not None:
        only_ids = svc.urls.ids_from(body["annotation_ids"], "annotations", "annotation_ids")
    async with svc.db.transaction() as conn:
        session_timeout = (
            await conn.execute(
                sa.select(q.session_timeout).where(
                    q.id == queue_id,
                    q.organization_id == who.organization_id,
                    visible_queues_clause(who, q.id),
                )
            )
        ).scalar_one_or_none()
        if session_timeout is None:
            raise NotFound(f"Queue {queue_id} not found.")
        picked = await _pick_next(conn, who, queue_id, statuses, only_ids)
        if picked is not None:
            await lifecycle.move(
                conn, picked, "reviewing", actor_id=who.user_id, only_from=statuses
            )
    return web.json_response(
        {
            "annotation": svc.urls.to("annotations", picked) if picked is not None else None,
            "session_timeout": session_timeout,
        }
    )


async def _pick_next(
    conn: AsyncConnection,
    who: Actor,
    queue_id: int,
    statuses: tuple[str, ...],
    only_ids: list[int] | None,
) -> int | None:
    """The oldest annotation to start; locked and skipped by concurrent callers on PostgreSQL.
    SQLite needs no lock: the write transaction is the only one (BEGIN IMMEDIATE)."""
    startable = [s for s in statuses if "reviewing" in lifecycle.TRANSITIONS[s]]
    if not startable:
        return None
    stmt = (
        sa.select(a.id)
        .where(
            a.queue_id == queue_id,
            a.organization_id == who.organization_id,
            a.status.in_(startable),
            # Never hand out what someone else is reviewing.
            sa.or_(a.status != "reviewing", a.modifier_id == who.user_id),
        )
        .order_by(a.arrived_at, a.id)
        .limit(1)
    )
    if only_ids is not None:
        stmt = stmt.where(a.id.in_(only_ids))
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return (await conn.execute(stmt)).scalar_one_or_none()
