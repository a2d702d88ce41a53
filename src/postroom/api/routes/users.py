"""`/users`: the collection endpoints of `domain.users` (`/auth/user` and the password change of
one's own are in `api.routes.auth`)."""

from __future__ import annotations

from postroom.api.resource_routes import resource_routes
from postroom.api.routing import Routes
from postroom.domain.users import USERS, UserJson

routes = Routes()
resource_routes(routes, "/users", USERS, UserJson)
