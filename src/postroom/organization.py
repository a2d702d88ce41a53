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

from postroom.db import tables as t
from postroom.domain.queues import insert_queue

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


# TRANSITIONAL: bootstrap and the CLI create queues through this name until they are re-pointed
# to `domain.queues.insert_queue`, the one way a queue is created.
create_queue = insert_queue
