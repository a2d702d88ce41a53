"""First start on an empty database: an organization, its admin, a workspace, schema, queue and inbox.

A generated admin password is shown once in the start-up output and also kept in
`<data_dir>/initial-admin-credentials.txt` (mode 0600) until that admin first logs in (or gets a
new password from `postroom user password`), so a start whose output nobody kept loses nothing.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

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
    admin_password: str | None  # set only when generated here (printed once)
    queue_id: int
    inbox_email: str
    credentials_file: Path | None = None  # where the generated password is kept until login


CREDENTIALS_FILE = "initial-admin-credentials.txt"


def write_credentials(data_dir: Path, username: str, password: str) -> Path:
    """Keep a generated admin password in a file only its owner can read; its path."""
    path = data_dir / CREDENTIALS_FILE
    text = (
        "# The admin Postroom created on its first start. This file is deleted when that user\n"
        "# first logs in (POST /api/v1/auth/login) or gets a new password (postroom user password).\n"
        f"username: {username}\npassword: {password}\n"
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(text)
    return path


def forget_credentials(data_dir: Path, username: str) -> None:
    """Delete the kept first-start password once `username` (its admin) no longer needs it."""
    path = data_dir / CREDENTIALS_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return
    if f"username: {username}" in lines:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


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
    kept = None
    if generated is not None:
        kept = write_credentials(settings.data_dir, boot.admin_username, generated)
    return FirstStart(boot.admin_username, generated, queue_id, inbox_email, kept)
