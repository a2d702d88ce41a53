"""Queues: where documents arrive, wait for review and leave by export.

Admins and managers see and change every queue of their organization; annotators and viewers
see only the queues they are assigned to (others answer 404) and change none (403). A queue's
JSON carries live `counts` (annotations per status), its users and hooks, all read for a whole
page at once. A body's references (schema, workspace, inbox, users, hooks) must be objects of
the caller's organization, and an inbox feeds one queue only. `insert_queue` is the one way a
queue is created — by the API, from a template, as a duplicate, and by bootstrap and the CLI.

Deletion is scheduled (`domain.queue_deletion`); templates and duplicates are made by
`domain.queue_copies`; the bodies are `domain.queue_bodies`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from typing_extensions import TypedDict

from postroom.clock import iso, utcnow
from postroom.db import tables as t
from postroom.domain.access import Actor
from postroom.domain.listing import IDS_PATTERN, Filter, Listing, any_case, comma_list
from postroom.domain.queue_bodies import QueueBody, QueueChange, check_engines, default_workspace
from postroom.domain.relations import ids_by_owner
from postroom.domain.resources import EditableResource, insert_returning_id
from postroom.errors import BadRequest
from postroom.fields import JsonObject, OptionalUrl, Timestamp, Url
from postroom.runtime import Runtime
from postroom.status import AnnotationStatus, QueueStatus
from postroom.urls import Urls, digits

q = t.queues
A = AnnotationStatus

# Every key of `queue.counts`, always present (0 when no annotation has that status).
COUNT_STATUSES: tuple[AnnotationStatus, ...] = (
    A.IMPORTING,
    A.SPLIT,
    A.FAILED_IMPORT,
    A.TO_REVIEW,
    A.REVIEWING,
    A.CONFIRMED,
    A.EXPORTING,
    A.POSTPONED,
    A.FAILED_EXPORT,
    A.EXPORTED,
    A.DELETED,
    A.PURGED,
    A.REJECTED,
)


class QueueJson(TypedDict):
    id: int
    name: str
    url: Url
    workspace: OptionalUrl
    connector: str | None
    webhooks: list[Url]
    hooks: list[Url]
    schema: Url
    inbox: OptionalUrl
    users: list[Url]
    session_timeout: str
    rir_url: str | None
    rir_params: str | None
    dedicated_engine: str | None
    generic_engine: str | None
    engine: str | None
    counts: dict[str, int]
    default_score_threshold: float
    automation_enabled: bool
    automation_level: str
    locale: str
    metadata: JsonObject
    use_confirmed_state: bool
    document_lifetime: str | None
    delete_after: Timestamp
    status: QueueStatus
    modified_by: OptionalUrl
    modified_at: Timestamp
    settings: JsonObject
    workflows: list[JsonObject]
    training_enabled: bool


class RelatedCountsJson(TypedDict):
    emails: int
    annotations: int
    documents: int
    trained_dedicated_engines: int


# ---------------------------------------------------------------- listing


def _linked_to(table: sa.Table, column: str) -> Any:
    def build(raw: str) -> sa.ColumnElement[bool]:
        ids = Filter(column, kind="ids", column=table.c[column]).clause(raw)
        return q.c.id.in_(sa.select(table.c.queue_id).where(ids))

    return build


def _url_reference(column: sa.Column[Any], collection: str) -> Any:
    """Filter a column holding a URL we do not own (connector, engines) by the id it ends with."""

    def build(raw: str) -> sa.ColumnElement[bool]:
        ids = [part.strip() for part in raw.split(",") if part.strip()]
        if not all(digits(i) for i in ids):
            raise BadRequest(f"{column.name}: expected ids separated by commas, got {raw!r}.")
        return sa.or_(*(column.like(f"%/{collection}/{i}") for i in ids))

    return build


def _deleting(raw: str) -> sa.ColumnElement[bool]:
    lowered = raw.strip().lower()
    if lowered not in ("true", "false", "1", "0"):
        raise BadRequest(f"deleting: expected true or false, got {raw!r}.")
    being_deleted = q.c.delete_after.is_not(None)
    return being_deleted if lowered in ("true", "1") else sa.not_(being_deleted)


_IDS = {"type": "string", "pattern": IDS_PATTERN}
_BARE_IDS = {"type": "string", "pattern": comma_list("[0-9]+")}
_DELETING = {"type": "string", "pattern": f"^\\s*(?:{any_case('true', 'false')}|1|0)\\s*$|^$"}

# The reference orders by `webhooks` too: by each queue's lowest hook id.
_FIRST_HOOK = (
    sa.select(sa.func.min(t.queue_hooks.c.hook_id))
    .where(t.queue_hooks.c.queue_id == q.c.id)
    .scalar_subquery()
)
LISTING = Listing(
    filters=(
        Filter("id", q.c.id),
        Filter("name", q.c.name, kind="str"),
        Filter("workspace", q.c.workspace_id),
        Filter("inbox", q.c.inbox_id),
        Filter("schema", q.c.schema_id),
        Filter("locale", q.c.locale, kind="strs"),
        Filter("status", q.c.status, kind="strs"),
        Filter("deleting", kind="custom", build=_deleting, schema=_DELETING),
        Filter("users", kind="custom", build=_linked_to(t.queue_users, "user_id"), schema=_IDS),
        Filter("hooks", kind="custom", build=_linked_to(t.queue_hooks, "hook_id"), schema=_IDS),
        Filter("webhooks", kind="custom", build=_linked_to(t.queue_hooks, "hook_id"), schema=_IDS),
        Filter(
            "connector",
            kind="custom",
            build=_url_reference(q.c.connector, "connectors"),
            schema=_BARE_IDS,
        ),
        Filter(
            "generic_engine",
            kind="custom",
            build=_url_reference(q.c.generic_engine, "generic_engines"),
            schema=_BARE_IDS,
        ),
        Filter(
            "dedicated_engine",
            kind="custom",
            build=_url_reference(q.c.dedicated_engine, "dedicated_engines"),
            schema=_BARE_IDS,
        ),
    ),
    ordering={
        "id": q.c.id,
        "webhooks": _FIRST_HOOK,
        "hooks": _FIRST_HOOK,
        "name": q.c.name,
        "workspace": q.c.workspace_id,
        "connector": q.c.connector,
        "schema": q.c.schema_id,
        "inbox": q.c.inbox_id,
        "locale": q.c.locale,
        "status": q.c.status,
        "modified_at": q.c.modified_at,
    },
    default=(q.c.id,),
    # Ties (same name, same workspace…) broken by id, so pages never overlap or skip a queue.
    tiebreak=(q.c.id,),
)


# ---------------------------------------------------------------- rendering


async def load_counts(conn: AsyncConnection, queue_ids: list[int]) -> dict[int, dict[str, int]]:
    """`counts` of every queue in one grouped query (never one query per queue)."""
    a = t.annotations
    counts: dict[int, dict[str, int]] = {
        queue_id: dict.fromkeys(COUNT_STATUSES, 0) for queue_id in queue_ids
    }
    if not queue_ids:
        return counts
    rows = await conn.execute(
        sa.select(a.c.queue_id, a.c.status, sa.func.count())
        .where(a.c.queue_id.in_(queue_ids))
        .group_by(a.c.queue_id, a.c.status)
    )
    for queue_id, status, number in rows:
        if status in counts[queue_id]:
            counts[queue_id][status] = int(number)
    return counts


def render_queue(
    urls: Urls, row: Any, counts: dict[str, int], user_ids: list[int], hook_ids: list[int]
) -> QueueJson:
    hooks = urls.many("hooks", hook_ids)
    rir_params = row.rir_params
    return {
        "id": row.id,
        "name": row.name,
        "url": urls.to("queues", row.id),
        "workspace": urls.of("workspaces", row.workspace_id),
        "connector": row.connector,
        "webhooks": hooks,
        "hooks": list(hooks),
        "schema": urls.to("schemas", row.schema_id),
        "inbox": urls.of("inboxes", row.inbox_id),
        "users": urls.many("users", user_ids),
        "session_timeout": row.session_timeout,
        "rir_url": row.rir_url,
        # The SDK types rir_params as a string; anything else stored long ago is shown as null.
        "rir_params": rir_params if isinstance(rir_params, str) else None,
        "dedicated_engine": row.dedicated_engine,
        "generic_engine": row.generic_engine,
        "engine": row.engine,
        "counts": counts,
        "default_score_threshold": float(row.default_score_threshold),
        "automation_enabled": row.automation_enabled,
        "automation_level": row.automation_level,
        "locale": row.locale,
        "metadata": row.metadata or {},
        "use_confirmed_state": row.use_confirmed_state,
        "document_lifetime": row.document_lifetime,
        "delete_after": iso(row.delete_after),
        "status": row.status,
        "modified_by": urls.of("users", row.modified_by_id),
        "modified_at": iso(row.modified_at),
        "settings": row.settings or {},
        "workflows": row.workflows or [],
        "training_enabled": row.training_enabled,
    }


# ---------------------------------------------------------------- the resource


async def insert_queue(
    conn: AsyncConnection,
    organization_id: int,
    *,
    name: str,
    schema_id: int,
    workspace_id: int | None,
    inbox_id: int | None = None,
    modified_by_id: int | None = None,
    **fields: Any,
) -> int:
    """Create a queue (the one way queues are made); `fields` are other column values."""
    now = utcnow()
    return await insert_returning_id(
        conn,
        q,
        organization_id=organization_id,
        name=name,
        schema_id=schema_id,
        workspace_id=workspace_id,
        inbox_id=inbox_id,
        modified_by_id=modified_by_id,
        modified_at=now,
        created_at=now,
        **fields,
    )


class Queues(EditableResource[QueueJson, QueueBody]):
    noun = "Queue"
    table = q
    queue_column = "id"
    body = QueueBody
    required = ("name", "schema_")
    listing = LISTING

    async def render(
        self, conn: AsyncConnection, urls: Urls, who: Actor, rows: Sequence[Any]
    ) -> list[QueueJson]:
        """Queue JSON for many rows with three queries in all (counts, users, hooks)."""
        ids = [row.id for row in rows]
        counts = await load_counts(conn, ids)
        users = await ids_by_owner(conn, t.queue_users.c.queue_id, t.queue_users.c.user_id, ids)
        hooks = await ids_by_owner(conn, t.queue_hooks.c.queue_id, t.queue_hooks.c.hook_id, ids)
        return [
            render_queue(urls, row, counts[row.id], users[row.id], hooks[row.id]) for row in rows
        ]

    async def insert(self, conn: AsyncConnection, rt: Runtime, who: Actor, body: QueueBody) -> int:
        change = QueueChange(body, rt.urls)
        values = change.values
        check_engines(values.get("generic_engine"), values.get("dedicated_engine"))
        await change.check(conn, who.organization_id, None)
        if "workspace_id" not in values:
            # Omitted (not null): place the queue where the Rossum UI would show it.
            values["workspace_id"] = await default_workspace(conn, who.organization_id)
        queue_id = await insert_queue(
            conn, who.organization_id, modified_by_id=who.user_id, **values
        )
        await change.save_links(conn, queue_id)
        return queue_id

    async def change(
        self, conn: AsyncConnection, rt: Runtime, who: Actor, row: Any, body: QueueBody
    ) -> None:
        change = QueueChange(body, rt.urls)
        merged = {**row._mapping, **change.values}
        check_engines(merged["generic_engine"], merged["dedicated_engine"])
        await change.check(conn, who.organization_id, row.id)
        await conn.execute(
            q.update()
            .where(q.c.id == row.id)
            .values(modified_by_id=who.user_id, modified_at=utcnow(), **change.values)
        )
        await change.save_links(conn, row.id)


QUEUES = Queues()


async def related_counts(rt: Runtime, who: Actor, queue_id: int) -> RelatedCountsJson:
    """How many emails, (non-purged) annotations and their documents the queue holds."""
    a, d, e = t.annotations, t.documents, t.emails
    async with rt.db.reading() as conn:
        row = await QUEUES.load(conn, who, queue_id)
        kept = sa.and_(a.c.queue_id == row.id, a.c.status != A.PURGED)
        annotations = await conn.scalar(sa.select(sa.func.count()).where(kept))
        documents = await conn.scalar(
            sa.select(sa.func.count(sa.distinct(d.c.id))).select_from(
                d.join(a, sa.and_(a.c.document_id == d.c.id, kept))
            )
        )
        emails = await conn.scalar(sa.select(sa.func.count()).where(e.c.queue_id == row.id))
    return {
        "emails": int(emails or 0),
        "annotations": int(annotations or 0),
        "documents": int(documents or 0),
        "trained_dedicated_engines": 0,
    }
