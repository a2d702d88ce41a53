"""The caller's organization (`/organizations`) and its group (`/organization_groups`).

A caller sees only their own organization; any other id is 404. Only admins change it. Postroom
has no multi-organization licensing, so every organization is alone in an organization group that
shares its id: the SDK requires `organization_group` to be a URL, and that URL resolves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection
from typing_extensions import TypedDict

from postroom.clock import iso
from postroom.db import tables as t
from postroom.domain.access import Actor
from postroom.domain.listing import Filter, Listing
from postroom.domain.relations import ids_by_owner
from postroom.domain.resources import Body, EditableResource, Resource, sent_fields
from postroom.fields import JsonObject, Name, OptionalUrl, Timestamp, Url
from postroom.runtime import Runtime
from postroom.urls import Urls

o = t.organizations


class OrganizationBody(Body):
    name: Name = ""
    ui_settings: JsonObject = {}
    metadata: JsonObject = {}


class OrganizationJson(TypedDict):
    id: int
    url: Url
    name: str
    workspaces: list[Url]
    users: list[Url]
    organization_group: Url
    ui_settings: JsonObject
    metadata: JsonObject
    created_at: Timestamp
    trial_expires_at: Timestamp
    is_trial: bool
    oidc_provider: None
    internal_info: None
    creator: OptionalUrl
    modified_by: None
    modified_at: None
    settings: JsonObject
    sandbox: bool


class OrganizationGroupJson(TypedDict):
    id: int
    url: Url
    name: str
    is_trial: bool
    is_production: bool
    deployment_location: str
    features: None
    usage: JsonObject
    modified_by: None
    modified_at: None


class Organizations(EditableResource[OrganizationJson, OrganizationBody]):
    noun = "Organization"
    table = o
    body = OrganizationBody
    required = ()
    listing = Listing(
        filters=(Filter("id", o.c.id), Filter("name", o.c.name, "str")),
        ordering={"id": o.c.id, "name": o.c.name},
        default=(o.c.id,),
    )

    def visible(self, who: Actor) -> Any:
        return o.c.id == who.organization_id

    def check_writer(self, who: Actor) -> None:
        who.require_admin()

    async def render(
        self, conn: AsyncConnection, urls: Urls, who: Actor, rows: Sequence[Any]
    ) -> list[OrganizationJson]:
        ids = [row.id for row in rows]
        workspaces = await ids_by_owner(
            conn, t.workspaces.c.organization_id, t.workspaces.c.id, ids
        )
        users = await ids_by_owner(conn, t.users.c.organization_id, t.users.c.id, ids)
        return [_render(urls, row, workspaces[row.id], users[row.id]) for row in rows]

    async def change(
        self, conn: AsyncConnection, rt: Runtime, who: Actor, row: Any, body: OrganizationBody
    ) -> None:
        sent = sent_fields(body)
        if sent:
            await conn.execute(o.update().where(o.c.id == row.id).values(**sent))


def _render(
    urls: Urls, row: Any, workspace_ids: list[int], user_ids: list[int]
) -> OrganizationJson:
    return {
        "id": row.id,
        "url": urls.to("organizations", row.id),
        "name": row.name,
        "workspaces": urls.many("workspaces", workspace_ids),
        "users": urls.many("users", user_ids),
        "organization_group": urls.to("organization_groups", row.id),
        "ui_settings": row.ui_settings or {},
        "metadata": row.metadata or {},
        "created_at": iso(row.created_at),
        "trial_expires_at": iso(row.trial_expires_at),
        "is_trial": row.is_trial,
        "oidc_provider": None,
        "internal_info": None,
        # The first user is the one bootstrap (or the organization's creator) made.
        "creator": urls.to("users", user_ids[0]) if user_ids else None,
        "modified_by": None,
        "modified_at": None,
        "settings": {},
        "sandbox": False,
    }


class OrganizationGroups(Resource[OrganizationGroupJson]):
    noun = "Organization group"
    table = o
    listing = Listing(filters=(), ordering={}, default=(o.c.id,))

    def visible(self, who: Actor) -> Any:
        return o.c.id == who.organization_id

    async def render(
        self, conn: AsyncConnection, urls: Urls, who: Actor, rows: Sequence[Any]
    ) -> list[OrganizationGroupJson]:
        return [
            {
                "id": row.id,
                "url": urls.to("organization_groups", row.id),
                "name": row.name,
                "is_trial": row.is_trial,
                "is_production": not row.is_trial,
                "deployment_location": "self-hosted",
                "features": None,
                "usage": {},
                "modified_by": None,
                "modified_at": None,
            }
            for row in rows
        ]


ORGANIZATIONS = Organizations()
ORGANIZATION_GROUPS = OrganizationGroups()
