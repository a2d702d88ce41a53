"""The query filters of the annotation list, shared by `GET /annotations` and the queue export.

The reference's filters: ids and statuses as comma lists, user references, every `*_at_before` /
`*_at_after` pair, booleans, and `search` (full text over datapoint values, file name, modifier
e-mail and messages). Filters the data model has nothing for (labels, relations, email threads,
assignees) are accepted and ignored, like other unknown parameters.
"""

from __future__ import annotations

import sqlalchemy as sa

from postroom.db import tables as t
from postroom.errors import BadRequest
from postroom.web.listing import Filter, _bool

MAX_SEARCH_CHARS = 256

a = t.annotations.c

_TIMESTAMPS = (
    "arrived_at",
    "assigned_at",
    "confirmed_at",
    "created_at",
    "modified_at",
    "deleted_at",
    "exported_at",
    "export_failed_at",
    "purged_at",
    "rejected_at",
)


def _search(raw: str) -> sa.ColumnElement[bool]:
    if len(raw) > MAX_SEARCH_CHARS:
        raise BadRequest(f"search: longer than {MAX_SEARCH_CHARS} characters.")
    term = raw.lower()
    d, u = t.documents.c, t.users.c
    in_file_name = sa.exists().where(
        d.id == a.document_id, sa.func.lower(d.original_file_name).contains(term, autoescape=True)
    )
    in_modifier = sa.exists().where(
        u.id == a.modifier_id, sa.func.lower(u.email).contains(term, autoescape=True)
    )
    in_content = sa.func.lower(sa.cast(a.content, sa.Text)).contains(term, autoescape=True)
    in_messages = sa.func.lower(sa.cast(a.messages, sa.Text)).contains(term, autoescape=True)
    return sa.or_(in_content, in_file_name, in_modifier, in_messages)


def _workspace(raw: str) -> sa.ColumnElement[bool]:
    q = t.queues.c
    in_workspaces = Filter("queue__workspace", q.workspace_id).clause(raw)
    return a.queue_id.in_(sa.select(q.id).where(in_workspaces))


def _restricted(raw: str) -> sa.ColumnElement[bool]:
    # Postroom has no restricted annotations: true matches none, false matches all.
    return sa.false() if _bool("restricted_access", raw) else sa.true()


ANNOTATION_FILTERS: tuple[Filter, ...] = (
    Filter("id", a.id),
    Filter("status", a.status, "strs"),
    Filter("queue", a.queue_id),
    Filter("document", a.document_id),
    Filter("modifier", a.modifier_id),
    Filter("modified_by", a.modified_by_id),
    Filter("creator", a.creator_id),
    Filter("confirmed_by", a.confirmed_by_id),
    Filter("deleted_by", a.deleted_by_id),
    Filter("exported_by", a.exported_by_id),
    Filter("purged_by", a.purged_by_id),
    Filter("rejected_by", a.rejected_by_id),
    Filter("queue__workspace", kind="custom", build=_workspace),
    Filter("upload", a.upload_id),
    Filter("email", a.email_id),
    Filter("automated", a.automated, "bool"),
    Filter("restricted_access", kind="custom", build=_restricted),
    Filter("search", kind="custom", build=_search),
    *(Filter(f"{name}_before", a[name], "before") for name in _TIMESTAMPS),
    *(Filter(f"{name}_after", a[name], "after") for name in _TIMESTAMPS),
)
