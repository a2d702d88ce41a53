"""What the e-mails of a queue add up to: `GET /emails/counts` (incoming e-mails by the fate of
their attachments, with the list's filters) and `POST /queues/{id}/suggested_recipients` (the
senders a reply may go to).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import WithJsonSchema
from typing_extensions import TypedDict

from postroom.clock import utcnow
from postroom.db import tables as t
from postroom.domain.access import Actor, require_visible_queue
from postroom.domain.email_filters import kept_documents
from postroom.domain.emails import EMAILS, E
from postroom.domain.resources import Body
from postroom.fields import REFERENCES_SCHEMA
from postroom.runtime import Runtime
from postroom.status import AnnotationStatus, EmailType

RECENT = timedelta(days=14)


class IncomingCountsJson(TypedDict):
    total: int
    no_documents: int
    recent_with_no_documents_not_replied: int
    rejected: int
    recent_with_filtered_out_documents: int
    # The reference's example names this key without "with_"; both are given.
    recent_filtered_out_documents: int


class EmailCountsJson(TypedDict):
    incoming: IncomingCountsJson


def _filtered_documents() -> sa.Exists:
    d = t.documents.c
    return sa.exists().where(d.email_id == E.id, d.attachment_status.is_not(None))


async def email_counts(rt: Runtime, who: Actor, query: Mapping[str, str]) -> EmailCountsJson:
    """Counts of incoming emails by the fate of their attachments (same filters as the list)."""
    base = EMAILS.filtered(who, query).where(E.type == EmailType.INCOMING).subquery()
    recent = E.created_at >= utcnow() - RECENT
    rejected_label = sa.func.lower(sa.cast(E.labels, sa.Text)).contains('"rejected"')
    a = t.annotations.c
    rejected_doc = sa.exists().where(a.email_id == E.id, a.status == AnnotationStatus.REJECTED)
    no_children = ~sa.exists().where(t.emails.alias("child").c.parent_id == E.id)

    def count(*where: Any) -> sa.ScalarSelect[int]:
        return (
            sa.select(sa.func.count())
            .select_from(t.emails)
            .where(E.id.in_(sa.select(base.c.id)), *where)
            .scalar_subquery()
        )

    stmt = sa.select(
        count().label("total"),
        count(~kept_documents()).label("no_documents"),
        count(~kept_documents(), recent, ~rejected_label, no_children).label("not_replied"),
        count(sa.or_(rejected_doc, rejected_label)).label("rejected"),
        count(recent, _filtered_documents()).label("filtered"),
    )
    async with rt.db.reading() as conn:
        row = (await conn.execute(stmt)).one()
    return {
        "incoming": {
            "total": row.total,
            "no_documents": row.no_documents,
            "recent_with_no_documents_not_replied": row.not_replied,
            "rejected": row.rejected,
            "recent_with_filtered_out_documents": row.filtered,
            "recent_filtered_out_documents": row.filtered,
        }
    }


class SuggestionJson(TypedDict):
    source: str
    email: str
    name: str


class SuggestionsJson(TypedDict):
    results: list[SuggestionJson]


_REFERENCES = {"anyOf": [REFERENCES_SCHEMA, {"type": "null"}]}


class SuggestionBody(Body):
    """The annotations and e-mail threads whose senders a reply may go to."""

    model_config = Body.model_config | {"strict": False}

    annotations: Annotated[Any, WithJsonSchema(_REFERENCES)] = None
    email_threads: Annotated[Any, WithJsonSchema(_REFERENCES)] = None


_NAME_SEPARATORS = re.compile(r"[._\-+]+")


def name_from_address(address: str) -> str:
    """`don.joe@corp.us` → `Don Joe` (what Rossum shows when the header has no name)."""
    local = address.split("@", 1)[0]
    return " ".join(w.capitalize() for w in _NAME_SEPARATORS.split(local) if w)


async def suggested_recipients(
    rt: Runtime, who: Actor, queue_id: int, body: SuggestionBody
) -> SuggestionsJson:
    """The senders of the emails behind the given annotations and email threads (no duplicates).

    Postroom has no separate thread objects: every incoming email starts its own thread, so an
    `email_threads` URL's id is read as the id of that email.
    """
    annotations = [] if body.annotations is None else body.annotations
    threads = [] if body.email_threads is None else body.email_threads
    annotation_ids = rt.urls.ids_from(annotations, "annotations", "annotations")
    thread_ids = rt.urls.ids_from(threads, "email_threads", "email_threads")
    a = t.annotations.c
    async with rt.db.reading() as conn:
        await require_visible_queue(conn, who, queue_id)
        via_annotations = sa.select(a.email_id).where(
            a.id.in_(annotation_ids), a.organization_id == who.organization_id
        )
        rows = await conn.execute(
            sa.select(E.from_email, E.from_name)
            .where(EMAILS.visible(who), sa.or_(E.id.in_(via_annotations), E.id.in_(thread_ids)))
            .order_by(E.id)
        )
        senders = rows.all()
    results: list[SuggestionJson] = []
    seen: set[str] = set()
    for address, name in senders:
        if not address or address.lower() in seen:
            continue
        seen.add(address.lower())
        results.append(
            {"source": "email_header", "email": address, "name": name or name_from_address(address)}
        )
    return {"results": results}
