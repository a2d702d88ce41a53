"""`/hooks`: the collection endpoints of `domain.hooks` (admins and managers only)."""

from __future__ import annotations

from postroom.api.resource_routes import resource_routes
from postroom.api.routing import Routes
from postroom.domain.hooks import HOOKS, HookJson

routes = Routes()
resource_routes(routes, "/hooks", HOOKS, HookJson)
