"""One module per resource: each declares its endpoints (`api.routing.Routes`) and stays thin.

`ROUTE_MODULES` is the order the router tries them in. (No `from __future__ import annotations`
here: the package attribute it defines would shadow the `annotations` route module.)
"""

from postroom.api.routes import (
    annotations,
    auth,
    docs,
    documents,
    emails,
    health,
    hooks,
    inboxes,
    metrics,
    organizations,
    queue_export,
    queues,
    review,
    schemas,
    tasks,
    uploads,
    users,
    workspaces,
)
from postroom.api.routing import Routes

ROUTE_MODULES: tuple[Routes, ...] = (
    health.routes,
    auth.routes,
    organizations.routes,
    users.routes,
    workspaces.routes,
    schemas.routes,
    inboxes.routes,
    hooks.routes,
    queues.routes,
    uploads.routes,
    tasks.routes,
    documents.routes,
    annotations.routes,
    emails.routes,
    review.routes,
    queue_export.routes,
    metrics.routes,
    docs.routes,
)
