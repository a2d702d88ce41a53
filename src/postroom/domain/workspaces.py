"""Workspaces: the containers of queues.

Everyone in the organization reads workspaces; `queues` lists only the queues the caller may
see. Admins and managers write. `autopilot` is read-only and always false (Postroom has no
autopilot). A workspace that still holds queues cannot be deleted (409), as in the reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from typing_extensions import TypedDict

from postroom.clock import utcnow
from postroom.db import tables as t
from postroom.domain.access import Actor
from postroom.domain.listing import Filter, Listing
from postroom.domain.relations import visible_queue_ids_by
from postroom.domain.resources import (
    Body,
    EditableResource,
    check_organization,
    insert_returning_id,
    sent_fields,
)
from postroom.errors import Conflict
from postroom.fields import JsonObject, Name, Reference, Url
from postroom.runtime import Runtime
from postroom.urls import Urls

w = t.workspaces


class WorkspaceBody(Body):
    name: Name = ""
    organization: Reference = ""
    metadata: JsonObject = {}


class WorkspaceJson(TypedDict):
    id: int
    name: str
    url: Url
    autopilot: bool
    organization: Url
    queues: list[Url]
    metadata: JsonObject


class Workspaces(EditableResource[WorkspaceJson, WorkspaceBody]):
    noun = "Workspace"
    delete_errors = (Conflict,)  # it still holds queues
    table = w
    body = WorkspaceBody
    listing = Listing(
        filters=(
            Filter("id", w.c.id),
            Filter("name", w.c.name, "str"),
            Filter("organization", w.c.organization_id),
        ),
        ordering={"id": w.c.id, "name": w.c.name},
        default=(w.c.id,),
    )

    async def render(
        self, conn: AsyncConnection, urls: Urls, who: Actor, rows: Sequence[Any]
    ) -> list[WorkspaceJson]:
        queues = await visible_queue_ids_by(
            conn, who, t.queues.c.workspace_id, [r.id for r in rows]
        )
        return [
            {
                "id": row.id,
                "name": row.name,
                "url": urls.to("workspaces", row.id),
                "autopilot": False,
                "organization": urls.to("organizations", row.organization_id),
                "queues": urls.many("queues", queues[row.id]),
                "metadata": row.metadata or {},
            }
            for row in rows
        ]

    async def insert(
        self, conn: AsyncConnection, rt: Runtime, who: Actor, body: WorkspaceBody
    ) -> int:
        sent = sent_fields(body)
        check_organization(rt.urls, who, sent)
        return await insert_returning_id(
            conn, w, organization_id=who.organization_id, created_at=utcnow(), **sent
        )

    async def change(
        self, conn: AsyncConnection, rt: Runtime, who: Actor, row: Any, body: WorkspaceBody
    ) -> None:
        sent = sent_fields(body)
        check_organization(rt.urls, who, sent)
        if sent:
            await conn.execute(w.update().where(w.c.id == row.id).values(**sent))

    async def remove(self, conn: AsyncConnection, rt: Runtime, who: Actor, row: Any) -> None:
        q = t.queues
        count = (
            await conn.execute(
                sa.select(sa.func.count()).select_from(q).where(q.c.workspace_id == row.id)
            )
        ).scalar_one()
        if count:
            raise Conflict(
                f"Workspace {row.id} contains {count} queues; delete or move them first."
            )
        await super().remove(conn, rt, who, row)


WORKSPACES = Workspaces()
