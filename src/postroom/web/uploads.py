"""REST endpoints that take files in: `POST /queues/{id}/upload[/{filename}]` (201 with results),
`POST /uploads[/{filename}]?queue=` (202 with a task URL), and reading uploads back.

Order of work per request (SPEC §4, §6): who and which queue (404/403/409 before a large body is
read; a small one is read meanwhile, in memory) → stream the body into temp files under the size
limit → validate the fields → make the blobs durable → one transaction creating every record
(grouped with concurrent uploads on SQLite) → wake the workers → answer. Basic auth is accepted
here, so integrations can post with `curl -u`.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom import metrics
from postroom.db import tables as t
from postroom.errors import BadRequest, Conflict, ConflictStatus, NotFound, PostroomError
from postroom.intake.accept import (
    ACTIVE,
    Accepted,
    Submission,
    accept_files,
    find_identical,
)
from postroom.intake.blobs import BUFFER_BYTES
from postroom.intake.receive_http import (
    BodyRules,
    ReceivedBody,
    discard_quietly,
    json_object_field,
    receive_body,
    store_files,
    upload_values,
)
from postroom.permissions import Actor, visible_queues_clause
from postroom.pipeline.commits import group_commit
from postroom.services import Services
from postroom.web.auth import basic_auth_allowed
from postroom.web.bodies import path_id, query_bool
from postroom.web.errors import error_response
from postroom.web.intake_render import render_upload, upload_children
from postroom.web.keys import actor, services
from postroom.web.listing import Filter, apply_filters, apply_ordering, envelope, paginate
from postroom.web.urls import Urls

routes = web.RouteTableDef()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_VALUES_BYTES = 64 * 1024


def closes_when_refused(handler: Handler) -> Handler:
    """An error answered before the body was read to its end also closes the connection.

    Without `Connection: close` the client keeps the connection and aiohttp lingers reading the
    unwanted rest of the body (up to 10 s); with it the client hangs up once it has the answer.
    """

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except PostroomError as error:
            response = error_response(error)
            if not request.content.is_eof():
                response.force_close()
            return response

    return wrapper


def upload_rules(svc: Services, path_filename: str | None) -> BodyRules:
    limits = svc.settings.limits
    return BodyRules(
        max_body_bytes=limits.max_upload_bytes,
        field_limits={"metadata": limits.max_metadata_bytes, "values": MAX_VALUES_BYTES},
        idle_timeout_s=limits.upload_idle_timeout_s,
        path_filename=path_filename,
    )


_Q = t.queues.c
_QUEUE_STATUS = sa.select(_Q.status).where(
    _Q.id == sa.bindparam("queue_id"), _Q.organization_id == sa.bindparam("organization_id")
)
_ASSIGNED_QUEUE_STATUS = _QUEUE_STATUS.where(
    _Q.id.in_(
        sa.select(t.queue_users.c.queue_id).where(
            t.queue_users.c.user_id == sa.bindparam("user_id")
        )
    )
)


async def check_queue_for_upload(svc: Services, who: Actor, queue_id: int) -> None:
    """404 unknown or invisible queue, 403 a viewer, 409 a queue that is not active.

    Checked before the body is read, so a refused upload costs the client no transfer; the
    transaction checks the status again (`accept_files`).
    """
    stmt = _QUEUE_STATUS if who.sees_all_queues else _ASSIGNED_QUEUE_STATUS
    params = {"queue_id": queue_id, "organization_id": who.organization_id, "user_id": who.user_id}
    async with svc.db.reading() as conn:
        status = (await conn.execute(stmt, params)).scalar()
    if status is None:
        raise NotFound(f"Queue {queue_id} not found.")
    who.require_importer()
    if status != ACTIVE:
        raise ConflictStatus(
            f"Queue {queue_id} does not accept documents while its status is {status}."
        )


async def _checked_body(
    request: web.Request, svc: Services, who: Actor, queue_id: int
) -> ReceivedBody:
    """The queue check (404/403/409), then the body.

    A small body (Content-Length within one blob buffer) is read while the queue is checked:
    it stays in memory until stored, so a refusal still leaves nothing on disk, and a small
    upload does not wait for two database round trips in a row. The queue's answer wins over
    any complaint about the body.
    """
    rules = upload_rules(svc, request.match_info.get("filename"))
    length = request.content_length
    if length is None or length > BUFFER_BYTES:
        await check_queue_for_upload(svc, who, queue_id)
        return await receive_body(request, svc.blobs, rules)
    check = asyncio.create_task(check_queue_for_upload(svc, who, queue_id))
    try:
        body = await receive_body(request, svc.blobs, rules)
    except BaseException:
        await check  # its refusal, if any, is the answer
        raise
    try:
        await check
    except BaseException:
        await discard_quietly(body)
        raise
    return body


async def receive_submission(
    request: web.Request, queue_id: int, *, task_type: str | None, reject_identical: bool = False
) -> Accepted:
    """The whole intake of one request; returns once everything is durable and committed."""
    svc, who = services(request), actor(request)
    body = await _checked_body(request, svc, who, queue_id)
    try:
        metadata = json_object_field(body, "metadata")
        values = upload_values(body)
        if not body.files:
            raise BadRequest(
                "No file given: send it as a multipart part named content, or as the request body."
            )
        if reject_identical:
            await _refuse_identical(svc, who, body)
        stored = await store_files(body, svc.blobs)
    except BaseException:
        await discard_quietly(body)
        raise
    submission = Submission(
        organization_id=who.organization_id,
        queue_id=queue_id,
        creator_id=who.user_id,
        files=stored,
        metadata=metadata,
        rir_values=values,
        task_type=task_type,
    )

    async def create_records(conn: AsyncConnection) -> Accepted:
        if reject_identical:
            first = stored[0]
            await _refuse_identical_in(
                conn, svc, who, first.blob_key, first.original_file_name, lock=True
            )
        return await accept_files(conn, submission)

    if svc.db.is_sqlite:
        # One writer at a time anyway: uploads arriving together share one transaction
        # (one commit, one fsync). PostgreSQL runs them side by side and groups WAL flushes.
        accepted: Accepted = await group_commit(svc.db).run(create_records)
    else:
        async with svc.db.transaction() as conn:
            accepted = await create_records(conn)
    svc.jobs_available.set()
    metrics.UPLOADED_FILES.labels(channel="http").inc(len(stored))
    return accepted


async def _refuse_identical(svc: Services, who: Actor, body: ReceivedBody) -> None:
    if len(body.files) != 1:
        raise BadRequest("reject_identical: only one file may be uploaded per request.")
    received = body.files[0]
    async with svc.db.reading() as conn:
        await _refuse_identical_in(conn, svc, who, received.writer.key, received.name)


async def _refuse_identical_in(
    conn: AsyncConnection, svc: Services, who: Actor, sha256: str, name: str, *, lock: bool = False
) -> None:
    existing = await find_identical(conn, who.organization_id, sha256, name, lock=lock)
    if existing is not None:
        raise Conflict(
            f"reject_identical: a document with the same content and file name {name!r} "
            f"already exists ({svc.urls.to('documents', existing)})."
        )


def _results(urls: Urls, accepted: Accepted) -> list[dict[str, str | None]]:
    return [
        {"annotation": urls.of("annotations", a), "document": urls.to("documents", d)}
        for d, a in accepted.documents
    ]


@routes.post("/api/v1/queues/{id}/upload")
@routes.post("/api/v1/queues/{id}/upload/{filename}")
@basic_auth_allowed
@closes_when_refused
async def upload_to_queue(request: web.Request) -> web.StreamResponse:
    """The deprecated Rossum import: 201 with one (annotation, document) pair per file."""
    urls = services(request).urls
    accepted = await receive_submission(request, path_id(request), task_type=None)
    results = _results(urls, accepted)
    first = results[0]
    body = {"results": results, "annotation": first["annotation"], "document": first["document"]}
    return web.json_response(body, status=201)


@routes.post("/api/v1/uploads")
@routes.post("/api/v1/uploads/{filename}")
@basic_auth_allowed
@closes_when_refused
async def create_upload(request: web.Request) -> web.StreamResponse:
    """202 with the task URL; `results` too, since the records exist by the time we answer."""
    urls = services(request).urls
    raw_queue = request.query.get("queue")
    if not raw_queue:
        raise BadRequest("queue: required query parameter (…/uploads?queue=<id>).")
    queue_id = urls.id_from(raw_queue, "queues", "queue")
    reject_identical = query_bool(request, "reject_identical")
    accepted = await receive_submission(
        request, queue_id, task_type="upload_created", reject_identical=reject_identical
    )
    assert accepted.task_id is not None
    body = {"url": urls.to("tasks", accepted.task_id), "results": _results(urls, accepted)}
    return web.json_response(body, status=202)


def _visible_uploads(who: Actor) -> sa.ColumnElement[bool]:
    u = t.uploads.c
    return sa.and_(u.organization_id == who.organization_id, visible_queues_clause(who, u.queue_id))


async def _render_rows(conn: AsyncConnection, urls: Urls, rows: list[Any]) -> list[dict[str, Any]]:
    children = await upload_children(conn, [row.id for row in rows])
    return [render_upload(urls, row, *children[row.id]) for row in rows]


UPLOAD_FILTERS = (
    Filter("id", t.uploads.c.id),
    Filter("queue", t.uploads.c.queue_id),
    Filter("creator", t.uploads.c.creator_id),
    Filter("email", t.uploads.c.email_id),
    Filter("created_at_before", t.uploads.c.created_at, "before"),
    Filter("created_at_after", t.uploads.c.created_at, "after"),
)
UPLOAD_ORDERING = {"id": t.uploads.c.id, "created_at": t.uploads.c.created_at}


@routes.get("/api/v1/uploads")
async def list_uploads(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    stmt = sa.select(t.uploads).where(_visible_uploads(who))
    stmt = apply_filters(stmt, request.query, UPLOAD_FILTERS)
    stmt = apply_ordering(stmt, request.query.get("ordering"), UPLOAD_ORDERING, [t.uploads.c.id])
    async with svc.db.reading() as conn:
        rows, pagination = await paginate(conn, request, svc.urls.base, stmt)
        results = await _render_rows(conn, svc.urls, rows)
    return web.json_response(envelope(pagination, results))


@routes.get("/api/v1/uploads/{id}")
async def retrieve_upload(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    upload_id = path_id(request)
    async with svc.db.reading() as conn:
        row = (
            await conn.execute(
                sa.select(t.uploads).where(t.uploads.c.id == upload_id, _visible_uploads(who))
            )
        ).first()
        if row is None:
            raise NotFound(f"Upload {upload_id} not found.")
        (result,) = await _render_rows(conn, svc.urls, [row])
    return web.json_response(result)
