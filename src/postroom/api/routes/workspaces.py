"""`/workspaces`: the collection endpoints of `domain.workspaces`."""

from __future__ import annotations

from postroom.api.resource_routes import resource_routes
from postroom.api.routing import Routes
from postroom.domain.workspaces import WORKSPACES, WorkspaceJson

routes = Routes()
resource_routes(routes, "/workspaces", WORKSPACES, WorkspaceJson)
