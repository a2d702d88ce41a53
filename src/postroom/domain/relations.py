"""Loading the URL lists that Rossum objects show for their relations, for a whole page at once.

`workspace.queues`, `schema.queues`, `inbox.queues`, `user.queues`, `hook.queues` and
`organization.users` are not stored on the object: they are the rows pointing at it. One query per
relation and page (never one per object) keeps lists cheap.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.db import tables as t
from postroom.domain.access import Actor, visible_queues_clause
from postroom.errors import BadRequest


async def ids_by_owner(
    conn: AsyncConnection,
    owner_column: sa.ColumnElement[Any],
    id_column: sa.ColumnElement[Any],
    owner_ids: list[int],
    *where: sa.ColumnElement[bool],
) -> dict[int, list[int]]:
    """{owner id: [ids of the rows whose `owner_column` is that owner]} in id order."""
    found: dict[int, list[int]] = {owner: [] for owner in owner_ids}
    if not owner_ids:
        return found
    rows = await conn.execute(
        sa.select(owner_column, id_column)
        .where(owner_column.in_(owner_ids), *where)
        .order_by(id_column)
    )
    for owner, related in rows:
        found[owner].append(related)
    return found


async def visible_queue_ids_by(
    conn: AsyncConnection, actor: Actor, owner_column: sa.ColumnElement[Any], owner_ids: list[int]
) -> dict[int, list[int]]:
    """Queue ids per owner (a column of `queues`), limited to the queues the actor may see."""
    q = t.queues
    return await ids_by_owner(
        conn, owner_column, q.c.id, owner_ids, visible_queues_clause(actor, q.c.id)
    )


async def require_queues(
    conn: AsyncConnection, actor: Actor, queue_ids: list[int], field: str
) -> list[int]:
    """The given queue ids, deduplicated, after checking each is a queue of the actor's organization."""
    wanted = list(dict.fromkeys(queue_ids))
    if not wanted:
        return wanted
    q = t.queues
    rows = await conn.execute(
        sa.select(q.c.id).where(q.c.id.in_(wanted), q.c.organization_id == actor.organization_id)
    )
    found = {row.id for row in rows}
    missing = [queue_id for queue_id in wanted if queue_id not in found]
    if missing:
        raise BadRequest(f"{field}: queue {missing[0]} does not exist.")
    return wanted
