"""New queues made from existing material: a shipped template (`from_template`) or another
queue (`duplicate`). Each runs in one transaction and answers the new queue's JSON.

A template or a duplicate gets its own schema (so editing one queue's fields never changes
another's) and, where the source has an inbox or the template asks for one, its own inbox with
a new random address: two queues never share an address.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.clock import utcnow
from postroom.db import tables as t
from postroom.domain.access import Actor
from postroom.domain.inboxes import create_inbox, email_prefix_from
from postroom.domain.queue_bodies import (
    PLAIN_FIELDS,
    DuplicateBody,
    FromTemplateBody,
    default_workspace,
    require_in_org,
)
from postroom.domain.queue_templates import QueueTemplate, find_template, template_names
from postroom.domain.queues import QUEUES, QueueJson, insert_queue
from postroom.domain.resources import insert_returning_id, require_fields
from postroom.errors import BadRequest
from postroom.runtime import Runtime

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
# Queue columns a duplicate takes from its source (before the copy_* flags trim them).
# Everything a body may set, except the name (the copy is named anew), plus the workspace.
COPIED_COLUMNS = ("workspace_id", *(f for f in PLAIN_FIELDS if f != "name"))


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


async def _new_inbox(
    rt: Runtime,
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
        rt.settings.smtp.domain,
        modified_by_id=who.user_id,
        modified_at=utcnow(),
        **fields,
    )


def _template(name: str) -> QueueTemplate:
    template = find_template(name)
    if template is None:
        raise BadRequest(
            f"template_name: unknown template {name!r} (available: {', '.join(template_names())})."
        )
    return template


async def create_from_template(rt: Runtime, who: Actor, body: FromTemplateBody) -> QueueJson:
    """A queue with the template's schema and settings, and its own inbox unless declined.
    Templates hold no documents, so `include_documents` has nothing to copy."""
    who.require_manager()
    require_fields(body, ("name", "template_name"))
    template = _template(body.template_name)
    workspace_id = rt.urls.optional_id_from(body.workspace, "workspaces", "workspace")
    async with rt.db.transaction() as conn:
        if workspace_id is None:
            workspace_id = await default_workspace(conn, who.organization_id)
        else:
            await require_in_org(
                conn, t.workspaces, [workspace_id], who.organization_id, "workspace"
            )
        schema_id = await _insert_schema(conn, who, f"{body.name} schema", template.schema_content)
        inbox_id = None
        if body.create_inbox:
            inbox_id = await _new_inbox(rt, conn, who, body.name, body.email_prefix)
        queue_id = await insert_queue(
            conn,
            who.organization_id,
            **template.queue,
            name=body.name,
            schema_id=schema_id,
            workspace_id=workspace_id,
            inbox_id=inbox_id,
            engine=body.engine,
            modified_by_id=who.user_id,
        )
        return await QUEUES.one(conn, rt.urls, who, queue_id)


def _duplicate_values(source: Any, flags: DuplicateBody) -> dict[str, Any]:
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
    rt: Runtime, conn: AsyncConnection, who: Actor, source: Any, name: str, copy_settings: bool
) -> int | None:
    if source.inbox_id is None:
        return None
    inbox = (
        await conn.execute(sa.select(t.inboxes).where(t.inboxes.c.id == source.inbox_id))
    ).one()
    fields = {c: inbox._mapping[c] for c in EMAIL_SETTING_COLUMNS} if copy_settings else {}
    # Same prefix, new random suffix.
    return await _new_inbox(
        rt, conn, who, name, inbox.email_prefix, metadata=inbox.metadata, **fields
    )


async def _copy_links(
    conn: AsyncConnection, source_id: int, new_id: int, flags: DuplicateBody
) -> None:
    for table, column, wanted in (
        (t.queue_users, "user_id", flags.copy_permissions),
        (t.queue_hooks, "hook_id", flags.copy_extensions_settings),
    ):
        if not wanted:
            continue
        ids = list(
            (
                await conn.execute(sa.select(table.c[column]).where(table.c.queue_id == source_id))
            ).scalars()
        )
        if ids:
            await conn.execute(table.insert(), [{"queue_id": new_id, column: i} for i in ids])


async def duplicate(rt: Runtime, who: Actor, queue_id: int, flags: DuplicateBody) -> QueueJson:
    """A copy of the queue honouring the copy_* flags (delete recommendations and rules:
    Postroom keeps neither, so those flags have nothing to copy)."""
    async with rt.db.reading() as conn:
        await QUEUES.load(conn, who, queue_id)  # 404 before 403
    who.require_manager()
    async with rt.db.transaction() as conn:
        source = await QUEUES.load(conn, who, queue_id)
        name = flags.name or f"{source.name} (copy)"[:255]
        schema = (
            await conn.execute(sa.select(t.schemas).where(t.schemas.c.id == source.schema_id))
        ).one()
        schema_id = await _insert_schema(conn, who, f"{name} schema", schema.content)
        inbox_id = await _copy_inbox(rt, conn, who, source, name, flags.copy_email_settings)
        new_id = await insert_queue(
            conn,
            who.organization_id,
            **_duplicate_values(source, flags),
            name=name,
            schema_id=schema_id,
            inbox_id=inbox_id,
            modified_by_id=who.user_id,
        )
        await _copy_links(conn, source.id, new_id, flags)
        return await QUEUES.one(conn, rt.urls, who, new_id)
