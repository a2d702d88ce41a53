"""Creating the records that set up intake: organizations, workspaces, schemas, inboxes, queues.

Used by first-start bootstrap, the CLI and the REST API alike, so an inbox address or a queue is
made the same way wherever it is made.
"""

from __future__ import annotations

import json
import re
import secrets
from importlib import resources
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.clock import utcnow
from postroom.db import tables as t

EMAIL_PREFIX_RE = re.compile(r"^[a-z0-9-]{1,57}$")


def load_template(name: str) -> dict[str, Any]:
    text = resources.files("postroom.templates").joinpath(f"{name}.json").read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


def email_prefix_from(name: str) -> str:
    """A valid inbox prefix derived from a display name (lower-case a-z, 0-9 and dashes)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return (slug or "inbox")[:57].strip("-") or "inbox"


def new_inbox_address(prefix: str, domain: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}@{domain}".lower()


async def insert_returning_id(conn: AsyncConnection, table: sa.Table, **values: Any) -> int:
    result = await conn.execute(table.insert().values(**values).returning(table.c.id))
    return int(result.scalar_one())


async def create_inbox(
    conn: AsyncConnection, organization_id: int, name: str, prefix: str, domain: str, **fields: Any
) -> int:
    # Six random hex digits rarely collide; try again when they do.
    for _ in range(20):
        address = new_inbox_address(prefix, domain)
        taken = await conn.execute(sa.select(t.inboxes.c.id).where(t.inboxes.c.email == address))
        if taken.first() is None:
            return await insert_returning_id(
                conn,
                t.inboxes,
                organization_id=organization_id,
                name=name,
                email=address,
                email_prefix=prefix,
                **fields,
            )
    raise RuntimeError("could not find a free inbox address")


async def create_queue(
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
    now = utcnow()
    return await insert_returning_id(
        conn,
        t.queues,
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
