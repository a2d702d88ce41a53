"""`GET /tasks/{id}`: the status monitor of an asynchronous upload or e-mail import.

A task is `running` while any annotation of its upload is still `importing` and `succeeded` once
all have left it (derived at read time, so the pipeline needs no second write); `failed` with a
`detail` when the import itself failed. A succeeded task answers 303 to its `result_url` unless
`no_redirect` is true (`true`, `True`, `1` — the rossum-api SDK sends `True`).
"""

from __future__ import annotations

import sqlalchemy as sa
from aiohttp import web

from postroom.db import tables as t
from postroom.errors import NotFound
from postroom.permissions import Actor, visible_queues_clause
from postroom.web.bodies import path_id
from postroom.web.intake_render import render_task, task_result_url, task_status
from postroom.web.keys import actor, services

routes = web.RouteTableDef()

_TRUE = ("1", "true", "yes", "on")


def _visible_tasks(who: Actor) -> sa.ColumnElement[bool]:
    """Tasks of uploads or e-mails in queues the actor sees; others only to their creator."""
    k, u, e = t.tasks.c, t.uploads.c, t.emails.c
    upload_queue = sa.select(u.queue_id).where(u.id == k.upload_id).scalar_subquery()
    email_queue = sa.select(e.queue_id).where(e.id == k.email_id).scalar_subquery()
    return sa.and_(
        k.organization_id == who.organization_id,
        sa.or_(
            sa.and_(k.upload_id.is_not(None), visible_queues_clause(who, upload_queue)),
            sa.and_(
                k.upload_id.is_(None),
                k.email_id.is_not(None),
                visible_queues_clause(who, email_queue),
            ),
            sa.and_(k.upload_id.is_(None), k.email_id.is_(None), k.creator_id == who.user_id),
            sa.true() if who.sees_all_queues else sa.false(),
        ),
    )


@routes.get("/api/v1/tasks/{id}")
async def retrieve_task(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    task_id = path_id(request)
    async with svc.db.reading() as conn:
        row = (
            await conn.execute(
                sa.select(t.tasks).where(t.tasks.c.id == task_id, _visible_tasks(who))
            )
        ).first()
        if row is None:
            raise NotFound(f"Task {task_id} not found.")
        status = await task_status(conn, row)
    no_redirect = request.query.get("no_redirect", "").strip().lower() in _TRUE
    result_url = task_result_url(svc.urls, row)
    if status == "succeeded" and not no_redirect and result_url is not None:
        return web.Response(status=303, headers={"Location": result_url})
    return web.json_response(render_task(svc.urls, row, status))
