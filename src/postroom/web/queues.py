"""REST endpoints for queues: list, create, retrieve, PUT/PATCH, DELETE (scheduled), from_template,
duplicate and related_objects_counts.

The queue's upload, export, next and suggested_recipients routes live with their own features
(`web.uploads`, `web.export`, `web.review`, `web.emails`). Admins and managers see and change
every queue of their organization; annotators and viewers see only the queues they are assigned
to (others answer 404) and change none (403).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.clock import utcnow
from postroom.db import tables as t
from postroom.errors import BadRequest, ConflictStatus, NotFound
from postroom.organization import create_inbox, email_prefix_from, insert_returning_id
from postroom.permissions import Actor, visible_queues_clause
from postroom.queue_templates import find_template, template_names
from postroom.services import Services
from postroom.web import queue_models as qm
from postroom.web.bodies import read_object, validate
from postroom.web.keys import actor, services
from postroom.web.listing import Filter, apply_filters, apply_ordering, envelope, paginate
from postroom.web.urls import Urls

routes = web.RouteTableDef()

COLLECTION = "/api/v1/queues"
ONE = COLLECTION + r"/{id:\d+}"
DEFAULT_DELETE_AFTER = timedelta(hours=24)

q = t.queues


def _linked_to(table: sa.Table, column: str) -> Any:
    def build(raw: str) -> sa.ColumnElement[bool]:
        ids = Filter(column, kind="ids", column=table.c[column]).clause(raw)
        return q.c.id.in_(sa.select(table.c.queue_id).where(ids))

    return build


def _url_reference(column: sa.Column[Any], collection: str) -> Any:
    """Filter a column holding a URL we do not own (connector, engines) by the id it ends with."""

    def build(raw: str) -> sa.ColumnElement[bool]:
        ids = [part.strip() for part in raw.split(",") if part.strip()]
        if not all(i.isdigit() for i in ids):
            raise BadRequest(f"{column.name}: expected ids separated by commas, got {raw!r}.")
        return sa.or_(*(column.like(f"%/{collection}/{i}") for i in ids))

    return build


def _deleting(raw: str) -> sa.ColumnElement[bool]:
    lowered = raw.strip().lower()
    if lowered not in ("true", "false", "1", "0"):
        raise BadRequest(f"deleting: expected true or false, got {raw!r}.")
    being_deleted = q.c.delete_after.is_not(None)
    return being_deleted if lowered in ("true", "1") else sa.not_(being_deleted)


FILTERS = (
    Filter("id", q.c.id),
    Filter("name", q.c.name, kind="str"),
    Filter("workspace", q.c.workspace_id),
    Filter("inbox", q.c.inbox_id),
    Filter("schema", q.c.schema_id),
    Filter("locale", q.c.locale, kind="strs"),
    Filter("status", q.c.status, kind="strs"),
    Filter("deleting", kind="custom", build=_deleting),
    Filter("users", kind="custom", build=_linked_to(t.queue_users, "user_id")),
    Filter("hooks", kind="custom", build=_linked_to(t.queue_hooks, "hook_id")),
    Filter("webhooks", kind="custom", build=_linked_to(t.queue_hooks, "hook_id")),
    Filter("connector", kind="custom", build=_url_reference(q.c.connector, "connectors")),
    Filter(
        "generic_engine",
        kind="custom",
        build=_url_reference(q.c.generic_engine, "generic_engines"),
    ),
    Filter(
        "dedicated_engine",
        kind="custom",
        build=_url_reference(q.c.dedicated_engine, "dedicated_engines"),
    ),
)
ORDERING = {
    "id": q.c.id,
    "name": q.c.name,
    "workspace": q.c.workspace_id,
    "connector": q.c.connector,
    "schema": q.c.schema_id,
    "inbox": q.c.inbox_id,
    "locale": q.c.locale,
    "status": q.c.status,
    "modified_at": q.c.modified_at,
}


def _visible(who: Actor) -> sa.Select[Any]:
    return sa.select(q).where(
        q.c.organization_id == who.organization_id, visible_queues_clause(who, q.c.id)
    )


async def visible_queue(conn: AsyncConnection, who: Actor, queue_id: int) -> Any:
    """The queue row if the actor may see it; 404 otherwise (invisible and missing look alike)."""
    row = (await conn.execute(_visible(who).where(q.c.id == queue_id))).first()
    if row is None:
        raise NotFound(f"Queue {queue_id} not found.")
    return row


async def queue_json(conn: AsyncConnection, urls: Urls, queue_id: int) -> dict[str, Any]:
    row = (await conn.execute(sa.select(q).where(q.c.id == queue_id))).one()
    return (await qm.render_queues(conn, urls, [row]))[0]


def _queue_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if len(raw) > 18:
        raise NotFound("Queue not found.")
    return int(raw)


# ---------------------------------------------------------------- reading


@routes.get(COLLECTION)
async def list_queues(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    stmt = apply_filters(_visible(who), request.query, FILTERS)
    stmt = apply_ordering(stmt, request.query.get("ordering"), ORDERING, [q.c.id])
    async with svc.db.reading() as conn:
        rows, pagination = await paginate(conn, request, svc.urls.base, stmt)
        results = await qm.render_queues(conn, svc.urls, rows)
    return web.json_response(envelope(pagination, results))


@routes.get(ONE)
async def retrieve_queue(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    async with svc.db.reading() as conn:
        row = await visible_queue(conn, who, _queue_id(request))
        return web.json_response((await qm.render_queues(conn, svc.urls, [row]))[0])


@routes.get(ONE + "/related_objects_counts")
async def related_objects_counts(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    a, d, e = t.annotations, t.documents, t.emails
    async with svc.db.reading() as conn:
        row = await visible_queue(conn, who, _queue_id(request))
        kept = sa.and_(a.c.queue_id == row.id, a.c.status != "purged")
        annotations = await conn.scalar(sa.select(sa.func.count()).where(kept))
        documents = await conn.scalar(
            sa.select(sa.func.count(sa.distinct(d.c.id))).select_from(
                d.join(a, sa.and_(a.c.document_id == d.c.id, kept))
            )
        )
        emails = await conn.scalar(sa.select(sa.func.count()).where(e.c.queue_id == row.id))
    return web.json_response(
        {
            "emails": int(emails or 0),
            "annotations": int(annotations or 0),
            "documents": int(documents or 0),
            "trained_dedicated_engines": 0,
        }
    )


# ---------------------------------------------------------------- writing


async def _require_in_org(
    conn: AsyncConnection, table: sa.Table, ids: list[int], org_id: int, field: str
) -> None:
    if not ids:
        return
    found = set(
        (
            await conn.execute(
                sa.select(table.c.id).where(table.c.id.in_(ids), table.c.organization_id == org_id)
            )
        ).scalars()
    )
    missing = sorted(set(ids) - found)
    if missing:
        raise BadRequest(f"{field}: {', '.join(map(str, missing))} not found.")


async def _check_inbox_free(
    conn: AsyncConnection, inbox_id: int | None, org_id: int, queue_id: int | None
) -> None:
    if inbox_id is None:
        return
    await _require_in_org(conn, t.inboxes, [inbox_id], org_id, "inbox")
    taken = await conn.scalar(
        sa.select(q.c.id).where(q.c.inbox_id == inbox_id, q.c.id != (queue_id or 0)).limit(1)
    )
    if taken is not None:
        raise BadRequest(f"inbox: inbox {inbox_id} already belongs to queue {taken}.")


PLAIN_FIELDS = (
    "name",
    "connector",
    "session_timeout",
    "rir_url",
    "rir_params",
    "dedicated_engine",
    "generic_engine",
    "engine",
    "default_score_threshold",
    "automation_enabled",
    "automation_level",
    "locale",
    "metadata",
    "use_confirmed_state",
    "document_lifetime",
    "settings",
    "workflows",
    "training_enabled",
)


class QueueChange:
    """A validated body turned into column values and link lists, references checked in the org."""

    def __init__(self, body: qm.QueueBody, urls: Urls) -> None:
        given = body.model_fields_set
        self.values: dict[str, Any] = {f: getattr(body, f) for f in PLAIN_FIELDS if f in given}
        if "schema_" in given:
            self.values["schema_id"] = urls.id_from(body.schema_, "schemas", "schema")
        if "workspace" in given:
            self.values["workspace_id"] = urls.optional_id_from(
                body.workspace, "workspaces", "workspace"
            )
        if "inbox" in given:
            self.values["inbox_id"] = urls.optional_id_from(body.inbox, "inboxes", "inbox")
        self.user_ids = (
            sorted(set(urls.ids_from(body.users, "users", "users"))) if "users" in given else None
        )
        # The deprecated `webhooks` overrides `hooks` when both are sent (reference).
        hooks = body.webhooks if "webhooks" in given else body.hooks
        self.hook_field = "webhooks" if "webhooks" in given else "hooks"
        self.hook_ids = (
            sorted(set(urls.ids_from(hooks, "hooks", self.hook_field)))
            if "webhooks" in given or "hooks" in given
            else None
        )

    async def check(self, conn: AsyncConnection, org_id: int, queue_id: int | None) -> None:
        v = self.values
        if "schema_id" in v:
            await _require_in_org(conn, t.schemas, [v["schema_id"]], org_id, "schema")
        if v.get("workspace_id") is not None:
            await _require_in_org(conn, t.workspaces, [v["workspace_id"]], org_id, "workspace")
        if "inbox_id" in v:
            await _check_inbox_free(conn, v["inbox_id"], org_id, queue_id)
        await _require_in_org(conn, t.users, self.user_ids or [], org_id, "users")
        await _require_in_org(conn, t.hooks, self.hook_ids or [], org_id, self.hook_field)

    async def save_links(self, conn: AsyncConnection, queue_id: int) -> None:
        for table, column, ids in (
            (t.queue_users, "user_id", self.user_ids),
            (t.queue_hooks, "hook_id", self.hook_ids),
        ):
            if ids is None:
                continue
            await conn.execute(table.delete().where(table.c.queue_id == queue_id))
            if ids:
                await conn.execute(table.insert(), [{"queue_id": queue_id, column: i} for i in ids])


def _check_engines(generic: str | None, dedicated: str | None) -> None:
    if generic is not None and dedicated is not None:
        raise BadRequest(
            "generic_engine, dedicated_engine: only one engine may be set; set the other to null."
        )


async def _default_workspace(conn: AsyncConnection, org_id: int) -> int | None:
    w = t.workspaces
    stmt = sa.select(w.c.id).where(w.c.organization_id == org_id).order_by(w.c.id).limit(1)
    return await conn.scalar(stmt)  # type: ignore[no-any-return]


@routes.post(COLLECTION)
async def create_queue(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    who.require_manager()
    body = validate(qm.QueueBody, await read_object(request))
    missing = [f for f in ("name", "schema_") if getattr(body, f) is None]
    if missing:
        names = ", ".join(f.rstrip("_") for f in missing)
        raise BadRequest(f"{names}: This field is required.")
    change = QueueChange(body, svc.urls)
    values = change.values
    _check_engines(values.get("generic_engine"), values.get("dedicated_engine"))
    now = utcnow()
    async with svc.db.transaction() as conn:
        await change.check(conn, who.organization_id, None)
        if "workspace_id" not in values:
            # Omitted (not null): place the queue where the Rossum UI would show it.
            values["workspace_id"] = await _default_workspace(conn, who.organization_id)
        queue_id = await insert_returning_id(
            conn,
            q,
            organization_id=who.organization_id,
            modified_by_id=who.user_id,
            modified_at=now,
            created_at=now,
            **values,
        )
        await change.save_links(conn, queue_id)
        result = await queue_json(conn, svc.urls, queue_id)
    return web.json_response(result, status=201)


async def _update_queue(request: web.Request, *, partial: bool) -> web.Response:
    svc, who = services(request), actor(request)
    queue_id = _queue_id(request)
    async with svc.db.reading() as conn:
        await visible_queue(conn, who, queue_id)
    who.require_manager()
    body = validate(qm.QueueBody, await read_object(request))
    if not partial:
        missing = [f for f in ("name", "schema_") if f not in body.model_fields_set]
        if missing:
            names = ", ".join(f.rstrip("_") for f in missing)
            raise BadRequest(f"{names}: This field is required.")
    change = QueueChange(body, svc.urls)
    async with svc.db.transaction() as conn:
        row = await visible_queue(conn, who, queue_id)
        merged = {**row._mapping, **change.values}
        _check_engines(merged["generic_engine"], merged["dedicated_engine"])
        await change.check(conn, who.organization_id, queue_id)
        await conn.execute(
            q.update()
            .where(q.c.id == queue_id)
            .values(modified_by_id=who.user_id, modified_at=utcnow(), **change.values)
        )
        await change.save_links(conn, queue_id)
        result = await queue_json(conn, svc.urls, queue_id)
    return web.json_response(result)


@routes.patch(ONE)
async def patch_queue(request: web.Request) -> web.Response:
    return await _update_queue(request, partial=True)


@routes.put(ONE)
async def put_queue(request: web.Request) -> web.Response:
    return await _update_queue(request, partial=False)


def _delete_delay(request: web.Request) -> timedelta:
    raw = request.query.get("delete_after", "")
    if raw == "":
        return DEFAULT_DELETE_AFTER
    delay = qm.parse_duration(raw)
    if delay is None:
        raise BadRequest(
            f"delete_after: expected a duration as HH:MM:SS (e.g. 24:00:00), got {raw!r}."
        )
    return delay


@routes.delete(ONE)
async def delete_queue(request: web.Request) -> web.Response:
    """Schedule the deletion: the background duty removes the queue after `delete_after`."""
    svc, who = services(request), actor(request)
    queue_id = _queue_id(request)
    async with svc.db.reading() as conn:
        await visible_queue(conn, who, queue_id)
    who.require_manager()
    delay = _delete_delay(request)
    now = utcnow()
    async with svc.db.transaction() as conn:
        row = await visible_queue(conn, who, queue_id)
        if row.status != "active":
            raise ConflictStatus(f"Queue {queue_id} is already being deleted ({row.status}).")
        # The reference: deletion unlinks the workspace at once, and import stops at once.
        await conn.execute(
            q.update()
            .where(q.c.id == queue_id, q.c.status == "active")
            .values(
                status="deletion_requested",
                delete_after=now + delay,
                workspace_id=None,
                modified_by_id=who.user_id,
                modified_at=now,
            )
        )
    return web.Response(status=202)


# ---------------------------------------------------------------- from template, duplicate


async def _insert_schema(conn: AsyncConnection, who: Actor, name: str, content: list[Any]) -> int:
    return await insert_returning_id(
        conn,
        t.schemas,
        organization_id=who.organization_id,
        name=name[:255],
        content=content,
        modified_by_id=who.user_id,
        modified_at=utcnow(),
    )


@routes.post(COLLECTION + "/from_template")
async def create_from_template(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    who.require_manager()
    body = validate(qm.FromTemplateBody, await read_object(request))
    template = find_template(body.template_name)
    if template is None:
        raise BadRequest(
            f"template_name: unknown template {body.template_name!r} "
            f"(available: {', '.join(template_names())})."
        )
    # Templates hold no documents, so include_documents has nothing to copy.
    workspace_id = svc.urls.optional_id_from(body.workspace, "workspaces", "workspace")
    now = utcnow()
    async with svc.db.transaction() as conn:
        if workspace_id is None:
            workspace_id = await _default_workspace(conn, who.organization_id)
        else:
            await _require_in_org(
                conn, t.workspaces, [workspace_id], who.organization_id, "workspace"
            )
        schema_id = await _insert_schema(conn, who, f"{body.name} schema", template.schema_content)
        inbox_id = None
        if body.create_inbox:
            inbox_id = await _new_inbox(svc, conn, who, body.name, body.email_prefix)
        queue_id = await insert_returning_id(
            conn,
            q,
            **template.queue,
            organization_id=who.organization_id,
            name=body.name,
            schema_id=schema_id,
            workspace_id=workspace_id,
            inbox_id=inbox_id,
            engine=body.engine,
            modified_by_id=who.user_id,
            modified_at=now,
            created_at=now,
        )
        result = await queue_json(conn, svc.urls, queue_id)
    return web.json_response(result, status=201)


async def _new_inbox(
    svc: Services,
    conn: AsyncConnection,
    who: Actor,
    queue_name: str,
    prefix: str | None,
    **fields: Any,
) -> int:
    return await create_inbox(
        conn,
        who.organization_id,
        f"{queue_name} inbox"[:255],
        prefix or email_prefix_from(queue_name),
        svc.settings.smtp.domain,
        modified_by_id=who.user_id,
        modified_at=utcnow(),
        **fields,
    )


# Inbox columns that are "email settings" (copied only with copy_email_settings).
EMAIL_SETTING_COLUMNS = (
    "bounce_email_to",
    "bounce_unprocessable_attachments",
    "bounce_postponed_annotations",
    "bounce_deleted_annotations",
    "bounce_email_with_no_attachments",
    "filters",
    "dmarc_check_action",
)
COPIED_COLUMNS = (
    "workspace_id",
    "connector",
    "session_timeout",
    "rir_url",
    "rir_params",
    "dedicated_engine",
    "generic_engine",
    "engine",
    "default_score_threshold",
    "automation_enabled",
    "automation_level",
    "locale",
    "metadata",
    "use_confirmed_state",
    "document_lifetime",
    "settings",
    "workflows",
    "training_enabled",
)


def _duplicate_values(source: Any, flags: qm.DuplicateBody) -> dict[str, Any]:
    values = {c: source._mapping[c] for c in COPIED_COLUMNS}
    settings = dict(source.settings or {})
    if not flags.copy_automation_settings:
        values.update(automation_enabled=False, automation_level="never")
        settings.pop("automation", None)
    if not flags.copy_email_settings:
        settings.pop("email_notifications", None)
    values["settings"] = settings
    return values


async def _copy_inbox(
    svc: Services, conn: AsyncConnection, who: Actor, source: Any, name: str, copy_settings: bool
) -> int | None:
    if source.inbox_id is None:
        return None
    inbox = (
        await conn.execute(sa.select(t.inboxes).where(t.inboxes.c.id == source.inbox_id))
    ).one()
    fields = {c: inbox._mapping[c] for c in EMAIL_SETTING_COLUMNS} if copy_settings else {}
    # Same prefix, new random suffix: two queues never share an address.
    return await _new_inbox(
        svc,
        conn,
        who,
        name,
        inbox.email_prefix,
        metadata=inbox.metadata,
        **fields,
    )


@routes.post(ONE + "/duplicate")
async def duplicate_queue(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    queue_id = _queue_id(request)
    async with svc.db.reading() as conn:
        await visible_queue(conn, who, queue_id)
    who.require_manager()
    flags = validate(qm.DuplicateBody, await read_object(request))
    now = utcnow()
    async with svc.db.transaction() as conn:
        source = await visible_queue(conn, who, queue_id)
        name = flags.name or f"{source.name} (copy)"[:255]
        schema = (
            await conn.execute(sa.select(t.schemas).where(t.schemas.c.id == source.schema_id))
        ).one()
        # The copy gets its own schema, so editing one queue's fields never changes the other's.
        schema_id = await _insert_schema(conn, who, f"{name} schema", schema.content)
        inbox_id = await _copy_inbox(svc, conn, who, source, name, flags.copy_email_settings)
        new_id = await insert_returning_id(
            conn,
            q,
            **_duplicate_values(source, flags),
            organization_id=who.organization_id,
            name=name,
            schema_id=schema_id,
            inbox_id=inbox_id,
            modified_by_id=who.user_id,
            modified_at=now,
            created_at=now,
        )
        links = await _source_links(conn, queue_id, flags)
        for table, rows in links:
            if rows:
                await conn.execute(table.insert(), [{**r, "queue_id": new_id} for r in rows])
        result = await queue_json(conn, svc.urls, new_id)
    return web.json_response(result, status=201)


async def _source_links(
    conn: AsyncConnection, queue_id: int, flags: qm.DuplicateBody
) -> list[tuple[sa.Table, list[dict[str, int]]]]:
    found: list[tuple[sa.Table, list[dict[str, int]]]] = []
    for table, column, wanted in (
        (t.queue_users, "user_id", flags.copy_permissions),
        (t.queue_hooks, "hook_id", flags.copy_extensions_settings),
    ):
        if not wanted:
            continue
        ids = (
            await conn.execute(sa.select(table.c[column]).where(table.c.queue_id == queue_id))
        ).scalars()
        found.append((table, [{column: i} for i in ids]))
    return found
