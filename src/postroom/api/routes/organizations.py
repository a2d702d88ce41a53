"""`/organizations` (the caller's own; admins may PATCH it), `/organization_groups` and `/groups`."""

from __future__ import annotations

from typing import Any

from postroom.api.pagination import envelope, page_request
from postroom.api.resource_routes import resource_routes
from postroom.api.routing import Call, Routes
from postroom.domain import groups
from postroom.domain.groups import GroupJson
from postroom.domain.organizations import (
    ORGANIZATION_GROUPS,
    ORGANIZATIONS,
    OrganizationGroupJson,
    OrganizationJson,
)
from postroom.errors import NotFound

routes = Routes()
resource_routes(routes, "/organizations", ORGANIZATIONS, OrganizationJson, edits=("PATCH",))
resource_routes(routes, "/organization_groups", ORGANIZATION_GROUPS, OrganizationGroupJson)


@routes.get("/groups", response=GroupJson, listing=groups.LISTING)
async def list_groups(call: Call) -> dict[str, Any]:
    """List the user roles (groups)."""
    page = groups.list_groups(call.rt.urls, call.query, page_request(call.query))
    return envelope(call.request, call.rt.urls.base, page)


@routes.get("/groups/{id}", response=GroupJson, errors=(NotFound,))
async def retrieve_group(call: Call) -> GroupJson:
    """Retrieve a user role (group)."""
    return groups.retrieve_group(call.rt.urls, call.id)
