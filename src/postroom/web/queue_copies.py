"""New queues made from existing material: a shipped template (`from_template`) or another
queue (`duplicate`). Each runs inside the caller's transaction and returns the new queue's id.

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
from postroom.organization import insert_returning_id
from postroom.permissions import Actor
from postroom.queue_templates import QueueTemplate
from postroom.services import Services
from postroom.web.queue_changes import (
    PLAIN_FIELDS,
    default_workspace,
    insert_schema,
    new_inbox,
    require_in_org,
)
from postroom.web.queue_models import DuplicateBody, FromTemplateBody

q = t.queues

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


async def queue_from_template(
    svc: Services,
    conn: AsyncConnection,
    who: Actor,
    body: FromTemplateBody,
    template: QueueTemplate,
    workspace_id: int | None,
) -> int:
    # Templates hold no documents, so include_documents has nothing to copy.
    if workspace_id is None:
        workspace_id = await default_workspace(conn, who.organization_id)
    else:
        await require_in_org(conn, t.workspaces, [workspace_id], who.organization_id, "workspace")
    schema_id = await insert_schema(conn, who, f"{body.name} schema", template.schema_content)
    inbox_id = None
    if body.create_inbox:
        inbox_id = await new_inbox(svc, conn, who, body.name, body.email_prefix)
    now = utcnow()
    return await insert_returning_id(
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
    svc: Services, conn: AsyncConnection, who: Actor, source: Any, name: str, copy_settings: bool
) -> int | None:
    if source.inbox_id is None:
        return None
    inbox = (
        await conn.execute(sa.select(t.inboxes).where(t.inboxes.c.id == source.inbox_id))
    ).one()
    fields = {c: inbox._mapping[c] for c in EMAIL_SETTING_COLUMNS} if copy_settings else {}
    # Same prefix, new random suffix.
    return await new_inbox(
        svc, conn, who, name, inbox.email_prefix, metadata=inbox.metadata, **fields
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


async def duplicate_queue(
    svc: Services, conn: AsyncConnection, who: Actor, source: Any, flags: DuplicateBody
) -> int:
    """A copy of `source` honouring the copy_* flags (delete recommendations and rules: Postroom
    keeps neither, so those flags have nothing to copy)."""
    name = flags.name or f"{source.name} (copy)"[:255]
    schema = (
        await conn.execute(sa.select(t.schemas).where(t.schemas.c.id == source.schema_id))
    ).one()
    schema_id = await insert_schema(conn, who, f"{name} schema", schema.content)
    inbox_id = await _copy_inbox(svc, conn, who, source, name, flags.copy_email_settings)
    now = utcnow()
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
    await _copy_links(conn, source.id, new_id, flags)
    return new_id
