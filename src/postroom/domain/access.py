"""Who may do what: roles, the authenticated actor, and queue visibility.

Roles follow Rossum's groups. Admins and managers see every queue of their organization;
annotators and viewers only the queues they are assigned to (queue.users ⇄ user.queues);
viewers cannot import or change annotations. Other reference roles map to the nearest of these.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.db import tables as t
from postroom.errors import AccessForbidden, NotFound

ADMIN = "admin"
MANAGER = "manager"
ANNOTATOR = "annotator"
VIEWER = "viewer"

# Every group the reference lists, in id order, with the role Postroom enforces for it.
GROUPS: tuple[tuple[str, str], ...] = (
    ("viewer", VIEWER),
    ("annotator", ANNOTATOR),
    ("admin", ADMIN),
    ("manager", MANAGER),
    ("annotator_limited", ANNOTATOR),
    ("annotator_embedded", ANNOTATOR),
    ("organization_group_admin", ADMIN),
    ("approver", ANNOTATOR),
)
GROUP_IDS: dict[str, int] = {name: index + 1 for index, (name, _role) in enumerate(GROUPS)}
ROLE_OF_GROUP: dict[str, str] = dict(GROUPS)


@dataclass(frozen=True)
class Actor:
    user_id: int
    organization_id: int
    username: str
    group: str
    # The sha256 of the API token the request carries (None with Basic credentials): the
    # session a password change of one's own keeps.
    token_digest: str | None = None

    @property
    def role(self) -> str:
        return ROLE_OF_GROUP.get(self.group, VIEWER)

    @property
    def sees_all_queues(self) -> bool:
        return self.role in (ADMIN, MANAGER)

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN

    def require_admin(self) -> None:
        if not self.is_admin:
            raise AccessForbidden("Only an admin may do this.")

    def require_manager(self) -> None:
        if not self.sees_all_queues:
            raise AccessForbidden("Only an admin or a manager may do this.")

    def require_importer(self) -> None:
        if self.role == VIEWER:
            raise AccessForbidden("A viewer may not import documents.")

    def require_annotator(self) -> None:
        if self.role == VIEWER:
            raise AccessForbidden("A viewer may not change annotations.")


def visible_queues_clause(
    actor: Actor, queue_id_column: sa.ColumnElement[int]
) -> sa.ColumnElement[bool]:
    """A WHERE clause limiting `queue_id_column` to the queues the actor may see."""
    if actor.sees_all_queues:
        return sa.true()
    assigned = sa.select(t.queue_users.c.queue_id).where(t.queue_users.c.user_id == actor.user_id)
    return queue_id_column.in_(assigned)


async def require_visible_queue(conn: AsyncConnection, actor: Actor, queue_id: int) -> None:
    """404 unless the queue exists in the actor's organization and the actor may see it."""
    q = t.queues
    stmt = sa.select(q.c.id).where(
        q.c.id == queue_id,
        q.c.organization_id == actor.organization_id,
        visible_queues_clause(actor, q.c.id),
    )
    if (await conn.execute(stmt)).first() is None:
        raise NotFound(f"Queue {queue_id} not found.")
