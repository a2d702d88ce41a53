"""Turning a validated queue body into records: column values, user and hook links, and the
checks that every referenced object (schema, workspace, inbox, users, hooks) exists in the
caller's organization. Shared by create, PUT/PATCH, from_template and duplicate.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.clock import utcnow
from postroom.db import tables as t
from postroom.errors import BadRequest
from postroom.organization import create_inbox, email_prefix_from, insert_returning_id
from postroom.permissions import Actor
from postroom.services import Services
from postroom.web.queue_models import QueueBody
from postroom.web.urls import Urls

q = t.queues

# Body fields stored as they are, in the column of the same name.
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


async def require_in_org(
    conn: AsyncConnection,
    table: sa.Table,
    ids: list[int],
    org_id: int,
    field: str,
    *where: sa.ColumnElement[bool],
) -> None:
    """400 naming `field` and the ids that are not rows of `table` in the organization."""
    if not ids:
        return
    stmt = sa.select(table.c.id).where(
        table.c.id.in_(ids), table.c.organization_id == org_id, *where
    )
    found = set((await conn.execute(stmt)).scalars())
    missing = sorted(set(ids) - found)
    if missing:
        raise BadRequest(f"{field}: {', '.join(map(str, missing))} not found.")


async def check_inbox_free(
    conn: AsyncConnection, inbox_id: int | None, org_id: int, queue_id: int | None
) -> None:
    """An inbox feeds one queue: mail to its address must have exactly one destination."""
    if inbox_id is None:
        return
    await require_in_org(conn, t.inboxes, [inbox_id], org_id, "inbox")
    taken = await conn.scalar(
        sa.select(q.c.id).where(q.c.inbox_id == inbox_id, q.c.id != (queue_id or 0)).limit(1)
    )
    if taken is not None:
        raise BadRequest(f"inbox: inbox {inbox_id} already belongs to queue {taken}.")


def check_engines(generic: str | None, dedicated: str | None) -> None:
    if generic is not None and dedicated is not None:
        raise BadRequest(
            "generic_engine, dedicated_engine: only one engine may be set; set the other to null."
        )


class QueueChange:
    """A validated body as column values and link lists (None: links not sent, left alone)."""

    def __init__(self, body: QueueBody, urls: Urls) -> None:
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
        self.hook_field = "webhooks" if "webhooks" in given else "hooks"
        hooks = body.webhooks if "webhooks" in given else body.hooks
        self.hook_ids = (
            sorted(set(urls.ids_from(hooks, "hooks", self.hook_field)))
            if "webhooks" in given or "hooks" in given
            else None
        )

    async def check(self, conn: AsyncConnection, org_id: int, queue_id: int | None) -> None:
        v = self.values
        if "schema_id" in v:
            await require_in_org(conn, t.schemas, [v["schema_id"]], org_id, "schema")
        if v.get("workspace_id") is not None:
            await require_in_org(conn, t.workspaces, [v["workspace_id"]], org_id, "workspace")
        if "inbox_id" in v:
            await check_inbox_free(conn, v["inbox_id"], org_id, queue_id)
        users = self.user_ids or []
        await require_in_org(conn, t.users, users, org_id, "users", t.users.c.deleted.is_(False))
        await require_in_org(conn, t.hooks, self.hook_ids or [], org_id, self.hook_field)

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


async def default_workspace(conn: AsyncConnection, org_id: int) -> int | None:
    """The organization's first workspace: where a queue goes when the body names none."""
    w = t.workspaces
    stmt = sa.select(w.c.id).where(w.c.organization_id == org_id).order_by(w.c.id).limit(1)
    return await conn.scalar(stmt)  # type: ignore[no-any-return]


async def insert_schema(conn: AsyncConnection, who: Actor, name: str, content: list[Any]) -> int:
    return await insert_returning_id(
        conn,
        t.schemas,
        organization_id=who.organization_id,
        name=name[:255],
        content=content,
        modified_by_id=who.user_id,
        modified_at=utcnow(),
    )


async def new_inbox(
    svc: Services,
    conn: AsyncConnection,
    who: Actor,
    queue_name: str,
    prefix: str | None,
    **fields: Any,
) -> int:
    """A fresh inbox (new random address) named after its queue."""
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
