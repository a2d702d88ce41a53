"""Emails: what the intake kept of a received message (headers, bodies, the raw bytes), with the
documents and annotations it became. List, retrieve, raw content, PATCH, counts, and the senders
suggested as recipients of a reply.

An email is visible through its queue (annotators and viewers: assigned queues only). Its JSON
follows `## Email` of the reference, with every field the rossum-api SDK requires non-null
(`id, url, queue, inbox, children, documents, from{email,name}`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import WithJsonSchema
from sqlalchemy.ext.asyncio import AsyncConnection
from typing_extensions import TypedDict

from postroom.clock import iso
from postroom.db import tables as t
from postroom.domain.access import Actor
from postroom.domain.email_filters import (
    YES_OR_NO_SCHEMA,
    address_in,
    from_email,
    has_documents,
    has_message_id_conflict,
    with_documents,
)
from postroom.domain.listing import IDS_PATTERN, Filter, Listing, apply_filters
from postroom.domain.resources import Body, EditableResource
from postroom.domain.stored_files import StoredBytes, stored_bytes
from postroom.errors import BadRequest
from postroom.fields import (
    OPTIONAL_REFERENCE_SCHEMA,
    JsonObject,
    OptionalUrl,
    Timestamp,
    Url,
    UrlOrEmpty,
)
from postroom.runtime import Runtime
from postroom.status import AnnotationStatus
from postroom.urls import Urls

e = t.emails
E = e.c
A = AnnotationStatus
BODY_BYTES = 4096  # body_text_plain / body_text_html are kept shortened to 4 kB
LABELS = frozenset(
    [
        "rejection",
        "automatic_rejection",
        "rejected",
        "automatic_status_changed_info",
        "forwarded",
        "reply",
    ]
)
PROCESSED = frozenset({A.EXPORTED, A.DELETED, A.PURGED, A.SPLIT})
UNPROCESSED = frozenset(
    {A.IMPORTING, A.FAILED_IMPORT, A.TO_REVIEW, A.REVIEWING, A.CONFIRMED}
    | {A.EXPORTING, A.POSTPONED, A.FAILED_EXPORT}
)
# Fields of the Email object a client may send back unchanged in a PATCH; they are ignored.
READ_ONLY_FIELDS = frozenset(
    [
        "id",
        "url",
        "queue",
        "inbox",
        "email_thread",
        "children",
        "documents",
        "created_at",
        "last_thread_email_created_at",
        "from",
        "to",
        "cc",
        "bcc",
        "type",
        "annotation_counts",
        "annotations",
        "related_annotations",
        "related_documents",
        "creator",
        "filtered_out_document_count",
        "content",
        "message_id",
        "message_id_conflict",
        "notification_status",
        "filtered_reason",
        "authentication_results",
    ]
)


class AnnotationCountsJson(TypedDict):
    annotations: int
    annotations_processed: int
    annotations_purged: int
    annotations_unprocessed: int
    annotations_rejected: int
    related_annotations: int


class AddressJson(TypedDict):
    email: str
    name: str


EmailJson = TypedDict(
    "EmailJson",
    {
        "id": int,
        "url": Url,
        "queue": UrlOrEmpty,
        "inbox": UrlOrEmpty,
        "parent": OptionalUrl,
        "email_thread": None,
        "children": list[Url],
        "documents": list[Url],
        "created_at": Timestamp,
        "last_thread_email_created_at": Timestamp,
        "subject": str | None,
        "from": AddressJson,
        "to": list[JsonObject],
        "cc": list[JsonObject],
        "bcc": list[JsonObject],
        "body_text_plain": str,
        "body_text_html": str,
        "metadata": JsonObject,
        "type": str,
        "annotation_counts": AnnotationCountsJson,
        "annotations": list[Url],
        "related_annotations": list[Url],
        "related_documents": list[Url],
        "creator": OptionalUrl,
        "filtered_out_document_count": int,
        "labels": list[str],
        "content": Url,
        # Postroom additions: the Message-ID, the earlier email of the inbox with the same
        # Message-ID and sender but other bytes (this one is flagged), why a sender was
        # filtered, the notice outcome, and the SPF/DKIM/DMARC verdict as an
        # Authentication-Results text.
        "message_id": str | None,
        "message_id_conflict": OptionalUrl,
        "filtered_reason": str | None,
        "notification_status": str | None,
        "authentication_results": str | None,
    },
)


class EmailPatch(Body):
    """The fields a PATCH may change; the read-only fields of an Email may be sent back."""

    model_config = Body.model_config | {"extra": "allow"}

    subject: Annotated[Any, WithJsonSchema({"type": ["string", "null"]})] = None
    body_text_plain: Annotated[Any, WithJsonSchema({"type": "string"})] = None
    body_text_html: Annotated[Any, WithJsonSchema({"type": "string"})] = None
    metadata: Annotated[Any, WithJsonSchema({"type": "object"})] = None
    labels: Annotated[Any, WithJsonSchema({"type": "array", "items": {"type": "string"}})] = None
    parent: Annotated[Any, WithJsonSchema(OPTIONAL_REFERENCE_SCHEMA)] = None


async def _children(conn: AsyncConnection, ids: list[int]) -> dict[int, dict[str, Any]]:
    """email id → its documents, annotations (with statuses), filtered count and child emails."""
    found: dict[int, dict[str, Any]] = {
        i: {"documents": [], "annotations": [], "statuses": [], "filtered": 0, "children": []}
        for i in ids
    }
    if not ids:
        return found
    d, a = t.documents.c, t.annotations.c
    for email_id, doc_id, status in await conn.execute(
        sa.select(d.email_id, d.id, d.attachment_status).where(d.email_id.in_(ids)).order_by(d.id)
    ):
        found[email_id]["documents"].append(doc_id)
        found[email_id]["filtered"] += status is not None
    for email_id, ann_id, status in await conn.execute(
        sa.select(a.email_id, a.id, a.status).where(a.email_id.in_(ids)).order_by(a.id)
    ):
        found[email_id]["annotations"].append(ann_id)
        found[email_id]["statuses"].append(status)
    for parent_id, child_id in await conn.execute(
        sa.select(E.parent_id, E.id).where(E.parent_id.in_(ids)).order_by(E.id)
    ):
        found[parent_id]["children"].append(child_id)
    return found


def _annotation_counts(statuses: list[str]) -> AnnotationCountsJson:
    return {
        "annotations": len(statuses),
        "annotations_processed": sum(s in PROCESSED for s in statuses),
        "annotations_purged": sum(s == A.PURGED for s in statuses),
        "annotations_unprocessed": sum(s in UNPROCESSED for s in statuses),
        "annotations_rejected": sum(s == A.REJECTED for s in statuses),
        "related_annotations": 0,
    }


def render_email(urls: Urls, row: Any, kids: dict[str, Any]) -> EmailJson:
    url = urls.to("emails", row.id)
    return {
        "id": row.id,
        "url": url,
        "queue": urls.of("queues", row.queue_id) or "",
        "inbox": urls.of("inboxes", row.inbox_id) or "",
        "parent": urls.of("emails", row.parent_id),
        "email_thread": None,
        "children": urls.many("emails", kids["children"]),
        "documents": urls.many("documents", kids["documents"]),
        "created_at": iso(row.created_at),
        "last_thread_email_created_at": iso(row.created_at),
        "subject": row.subject,
        "from": {"email": row.from_email or "", "name": row.from_name or ""},
        "to": row.to or [],
        "cc": row.cc or [],
        "bcc": row.bcc or [],
        "body_text_plain": row.body_text_plain or "",
        "body_text_html": row.body_text_html or "",
        "metadata": row.metadata or {},
        "type": row.type,
        "annotation_counts": _annotation_counts(kids["statuses"]),
        "annotations": urls.many("annotations", kids["annotations"]),
        "related_annotations": [],
        "related_documents": [],
        "creator": urls.of("users", row.creator_id),
        "filtered_out_document_count": kids["filtered"],
        "labels": row.labels or [],
        "content": url + "/content",
        "message_id": row.message_id,
        "message_id_conflict": urls.of("emails", row.message_id_conflict_id),
        "filtered_reason": row.filtered_reason,
        "notification_status": row.notification_status,
        "authentication_results": row.authentication_results,
    }


def _labels(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest("labels: expected a list of strings.")
    unknown = sorted(set(value) - LABELS)
    if unknown:
        raise BadRequest(
            f"labels: unknown label {unknown[0]!r} (allowed: {', '.join(sorted(LABELS))})."
        )
    return list(dict.fromkeys(value))


def shorten_body(text: str) -> str:
    """A body as kept: its first BODY_BYTES bytes of UTF-8 (never a broken character)."""
    encoded = text.encode("utf-8", "replace")
    if len(encoded) <= BODY_BYTES:
        return text
    return encoded[:BODY_BYTES].decode("utf-8", "ignore")


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{key}: expected a string.")
    return shorten_body(value)


def _patch_values(urls: Urls, sent: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in sent.items():
        if key in READ_ONLY_FIELDS:
            continue
        if key == "subject":
            if value is not None and not isinstance(value, str):
                raise BadRequest("subject: expected a string or null.")
            values["subject"] = value
        elif key in ("body_text_plain", "body_text_html"):
            values[key] = _text(key, value)
        elif key == "metadata":
            if not isinstance(value, dict):
                raise BadRequest("metadata: expected a JSON object.")
            values["metadata"] = value
        elif key == "labels":
            values["labels"] = _labels(value)
        elif key == "parent":
            values["parent_id"] = urls.optional_id_from(value, "emails", "parent")
        else:
            raise BadRequest(f"{key}: unknown field.")
    return values


class Emails(EditableResource[EmailJson, EmailPatch]):
    noun = "Email"
    table = e
    queue_column = "queue_id"
    body = EmailPatch
    listing = Listing(
        filters=(
            Filter("id", E.id),
            Filter("queue", E.queue_id),
            Filter("inbox", E.inbox_id),
            Filter("parent", E.parent_id),
            Filter("type", E.type, "strs"),
            Filter("subject", E.subject, "icontains"),
            Filter("from__email", E.from_email, "custom", from_email),
            Filter("from__name", E.from_name, "icontains"),
            Filter("to", E.to, "custom", address_in),
            Filter("created_at_before", E.created_at, "before"),
            Filter("created_at_after", E.created_at, "after"),
            Filter("last_thread_email_created_at_before", E.created_at, "before"),
            Filter("last_thread_email_created_at_after", E.created_at, "after"),
            Filter("has_documents", None, "custom", has_documents, YES_OR_NO_SCHEMA),
            Filter(
                "has_message_id_conflict", None, "custom", has_message_id_conflict, YES_OR_NO_SCHEMA
            ),
            Filter(
                "documents",
                None,
                "custom",
                with_documents,
                {"type": "string", "pattern": IDS_PATTERN},
            ),
        ),
        ordering={
            "id": E.id,
            "created_at": E.created_at,
            "last_thread_email_created_at": E.created_at,
            "subject": E.subject,
            "queue": E.queue_id,
            "inbox": E.inbox_id,
            "from__email": E.from_email,
            "from__name": E.from_name,
        },
        default=(E.id,),
    )

    def check_writer(self, who: Actor) -> None:
        who.require_annotator()

    def filtered(self, who: Actor, query: Mapping[str, str]) -> sa.Select[Any]:
        """The visible emails the query's filters select (the list's, without its ordering)."""
        return apply_filters(self.select(who), query, self.listing.filters)

    async def render(
        self, conn: AsyncConnection, urls: Urls, who: Actor, rows: Sequence[Any]
    ) -> list[EmailJson]:
        kids = await _children(conn, [row.id for row in rows])
        return [render_email(urls, row, kids[row.id]) for row in rows]

    async def change(
        self, conn: AsyncConnection, rt: Runtime, who: Actor, row: Any, body: EmailPatch
    ) -> None:
        fields = [name for name in EmailPatch.model_fields if name in body.model_fields_set]
        sent = {name: getattr(body, name) for name in fields}
        values = _patch_values(rt.urls, {**sent, **(body.model_extra or {})})
        parent_id = values.get("parent_id")
        if parent_id is not None:
            if parent_id == row.id:
                raise BadRequest("parent: an email cannot be its own parent.")
            visible = await conn.execute(
                sa.select(E.id).where(E.id == parent_id, self.visible(who))
            )
            if visible.first() is None:
                raise BadRequest(f"parent: email {parent_id} not found.")
        if values:
            await conn.execute(e.update().where(E.id == row.id).values(**values))

    async def content(self, rt: Runtime, who: Actor, object_id: int) -> StoredBytes:
        """The raw message exactly as received."""
        async with rt.db.reading() as conn:
            row = await self.load(conn, who, object_id)
        headers = {
            "Content-Type": "message/rfc822",
            "Content-Disposition": f'attachment; filename="email-{row.id}.eml"',
        }
        return await stored_bytes(rt, row.raw_blob, f"email {row.id}", headers)


EMAILS = Emails()
