"""`/inboxes`: the collection endpoints of `domain.inboxes`."""

from __future__ import annotations

from postroom.api.resource_routes import resource_routes
from postroom.api.routing import Routes
from postroom.domain.inboxes import INBOXES, InboxJson

routes = Routes()
resource_routes(routes, "/inboxes", INBOXES, InboxJson)
