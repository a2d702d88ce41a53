"""First start on an empty database: an organization, its admin, a workspace, schema, queue and inbox."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from postroom import credentials as accounts
from postroom.clock import utcnow
from postroom.config import Settings
from postroom.db import tables as t
from postroom.db.dialect import BOOTSTRAP_LOCK, advisory_lock
from postroom.db.engine import Database
from postroom.domain.access import ADMIN
from postroom.domain.inboxes import create_inbox, email_prefix_from
from postroom.domain.queue_templates import load_template
from postroom.domain.queues import insert_queue
from postroom.domain.resources import insert_returning_id


@dataclass(frozen=True)
class FirstStart:
    admin_username: str
    admin_password: str | None  # set only when generated here (printed once, never stored)
    queue_id: int
    inbox_email: str


async def bootstrap_if_empty(db: Database, settings: Settings) -> FirstStart | None:
    """Create the starter records unless an organization exists. Safe with concurrent starts."""
    async with db.transaction() as conn:
        await advisory_lock(conn, BOOTSTRAP_LOCK)
        if (await conn.execute(sa.select(t.organizations.c.id).limit(1))).first() is not None:
            return None
        boot = settings.bootstrap
        generated = None if boot.admin_password else accounts.generate_password()
        password = boot.admin_password or generated
        assert password is not None
        now = utcnow()
        org_id = await insert_returning_id(
            conn, t.organizations, name=boot.organization_name, created_at=now
        )
        admin_id = await insert_returning_id(
            conn,
            t.users,
            organization_id=org_id,
            username=boot.admin_username,
            email="",
            password_hash=accounts.hash_password(password),
            role=ADMIN,
            date_joined=now,
        )
        workspace_id = await insert_returning_id(
            conn, t.workspaces, organization_id=org_id, name="Default workspace", created_at=now
        )
        schema = load_template("default_schema")
        schema_id = await insert_returning_id(
            conn,
            t.schemas,
            organization_id=org_id,
            name=schema["name"],
            content=schema["content"],
            modified_at=now,
        )
        prefix = email_prefix_from(boot.queue_name)
        inbox_id = await create_inbox(
            conn, org_id, f"{boot.queue_name} inbox", prefix, settings.smtp.domain
        )
        queue_id = await insert_queue(
            conn,
            org_id,
            name=boot.queue_name,
            schema_id=schema_id,
            workspace_id=workspace_id,
            inbox_id=inbox_id,
            modified_by_id=admin_id,
        )
        await conn.execute(t.queue_users.insert().values(queue_id=queue_id, user_id=admin_id))
        inbox_email = (
            await conn.execute(sa.select(t.inboxes.c.email).where(t.inboxes.c.id == inbox_id))
        ).scalar_one()
    return FirstStart(boot.admin_username, generated, queue_id, inbox_email)
