"""REST endpoints for emails: list, retrieve, PATCH, raw content, counts, import; and the queue's
suggested recipients.

An email is visible through its queue (annotators and viewers: assigned queues only). Its JSON
follows `## Email` of the reference, with every field the rossum-api SDK requires non-null
(`id, url, queue, inbox, children, documents, from{email,name}`). `POST /emails/import` (admins)
hands a raw message to the same intake as SMTP mail and answers 202 with an `email_imported`
task once the records are committed.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.clock import iso, utcnow
from postroom.db import tables as t
from postroom.errors import BadRequest, ConflictStatus, NotFound, PayloadTooLarge
from postroom.intake.accept import TASK_LIFETIME
from postroom.intake.receive_http import (
    BodyRules,
    ReceivedBody,
    discard_quietly,
    json_object_field,
    receive_body,
)
from postroom.permissions import Actor, require_visible_queue, visible_queues_clause
from postroom.services import Services
from postroom.smtp.intake import IncomingMail, RawMessage, Target, lookup
from postroom.smtp.parse import BODY_BYTES
from postroom.web.blob_responses import blob_response
from postroom.web.bodies import path_id, read_object
from postroom.web.keys import actor, services
from postroom.web.listing import Filter, apply_filters, apply_ordering, envelope, paginate
from postroom.web.urls import Urls

routes = web.RouteTableDef()

E = t.emails.c
LABELS = frozenset(
    {
        "rejection",
        "automatic_rejection",
        "rejected",
        "automatic_status_changed_info",
        "forwarded",
        "reply",
    }
)
PROCESSED = ("exported", "deleted", "purged", "split")
UNPROCESSED = (
    "importing",
    "failed_import",
    "to_review",
    "reviewing",
    "confirmed",
    "exporting",
    "postponed",
    "failed_export",
)
RECENT = timedelta(days=14)
IMPORT_PREFIX = "emails_import:"
MAX_RECIPIENT_BYTES = 1024
MAX_VALUES_BYTES = 64 * 1024
# Fields of the Email object a client may send back unchanged in a PATCH; they are ignored.
READ_ONLY_FIELDS = frozenset(
    {
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
        "notification_status",
        "filtered_reason",
    }
)


def visible_emails(who: Actor) -> sa.ColumnElement[bool]:
    return sa.and_(E.organization_id == who.organization_id, visible_queues_clause(who, E.queue_id))


def _kept_documents() -> sa.Exists:
    d = t.documents.c
    return sa.exists().where(d.email_id == E.id, d.attachment_status.is_(None))


def _filtered_documents() -> sa.Exists:
    d = t.documents.c
    return sa.exists().where(d.email_id == E.id, d.attachment_status.is_not(None))


def _has_documents(raw: str) -> sa.ColumnElement[bool]:
    wanted = raw.strip().lower() in ("true", "1", "yes")
    if raw.strip().lower() not in ("true", "1", "yes", "false", "0", "no"):
        raise BadRequest(f"has_documents: expected true or false, got {raw!r}.")
    return _kept_documents() if wanted else ~_kept_documents()


def _with_documents(raw: str) -> sa.ColumnElement[bool]:
    ids = [p.rstrip("/").rsplit("/", 1)[-1] for p in raw.split(",") if p.strip()]
    if not all(i.isdigit() for i in ids):
        raise BadRequest(f"documents: expected ids or URLs separated by commas, got {raw!r}.")
    d = t.documents.c
    return sa.exists().where(d.email_id == E.id, d.id.in_([int(i) for i in ids]))


def _address_in(column: Any) -> Any:
    def build(raw: str) -> sa.ColumnElement[bool]:
        # JSON lists of {"email", "name"}; both dialects render a string value in double quotes.
        needle = f'"{raw.strip().lower()}"'
        return sa.func.lower(sa.cast(column, sa.Text)).contains(needle, autoescape=True)

    return build


EMAIL_FILTERS = (
    Filter("id", E.id),
    Filter("queue", E.queue_id),
    Filter("inbox", E.inbox_id),
    Filter("parent", E.parent_id),
    Filter("type", E.type, "strs"),
    Filter("subject", E.subject, "icontains"),
    Filter(
        "from__email",
        E.from_email,
        "custom",
        lambda raw: sa.func.lower(E.from_email) == raw.strip().lower(),
    ),
    Filter("from__name", E.from_name, "icontains"),
    Filter("to", E.to, "custom", _address_in(E.to)),
    Filter("created_at_before", E.created_at, "before"),
    Filter("created_at_after", E.created_at, "after"),
    Filter("last_thread_email_created_at_before", E.created_at, "before"),
    Filter("last_thread_email_created_at_after", E.created_at, "after"),
    Filter("has_documents", None, "custom", _has_documents),
    Filter("documents", None, "custom", _with_documents),
)
EMAIL_ORDERING = {
    "id": E.id,
    "created_at": E.created_at,
    "last_thread_email_created_at": E.created_at,
    "subject": E.subject,
    "queue": E.queue_id,
    "inbox": E.inbox_id,
    "from__email": E.from_email,
    "from__name": E.from_name,
}


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


def _annotation_counts(statuses: list[str]) -> dict[str, int]:
    return {
        "annotations": len(statuses),
        "annotations_processed": sum(s in PROCESSED for s in statuses),
        "annotations_purged": sum(s == "purged" for s in statuses),
        "annotations_unprocessed": sum(s in UNPROCESSED for s in statuses),
        "annotations_rejected": sum(s == "rejected" for s in statuses),
        "related_annotations": 0,
    }


def render_email(urls: Urls, row: Any, kids: dict[str, Any]) -> dict[str, Any]:
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
        # Postroom additions: the Message-ID, why a sender was filtered, the notice outcome.
        "message_id": row.message_id,
        "filtered_reason": row.filtered_reason,
        "notification_status": row.notification_status,
    }


async def _render(conn: AsyncConnection, svc: Services, rows: list[Any]) -> list[dict[str, Any]]:
    kids = await _children(conn, [r.id for r in rows])
    return [render_email(svc.urls, r, kids[r.id]) for r in rows]


async def load_email(conn: AsyncConnection, who: Actor, email_id: int) -> Any:
    row = (
        await conn.execute(sa.select(t.emails).where(E.id == email_id, visible_emails(who)))
    ).first()
    if row is None:
        raise NotFound(f"Email {email_id} not found.")
    return row


def _filtered_query(request: web.Request, who: Actor) -> sa.Select[Any]:
    stmt = sa.select(t.emails).where(visible_emails(who))
    return apply_filters(stmt, request.query, EMAIL_FILTERS)


@routes.get("/api/v1/emails")
async def list_emails(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    stmt = _filtered_query(request, who)
    stmt = apply_ordering(stmt, request.query.get("ordering"), EMAIL_ORDERING, [E.id])
    async with svc.db.reading() as conn:
        rows, pagination = await paginate(conn, request, svc.urls.base, stmt)
        results = await _render(conn, svc, rows)
    return web.json_response(envelope(pagination, results))


@routes.get("/api/v1/emails/counts")
async def email_counts(request: web.Request) -> web.Response:
    """Counts of incoming emails by the fate of their attachments (same filters as the list)."""
    svc, who = services(request), actor(request)
    base = _filtered_query(request, who).where(E.type == "incoming").subquery()
    recent = E.created_at >= utcnow() - RECENT
    rejected_label = sa.func.lower(sa.cast(E.labels, sa.Text)).contains('"rejected"')
    a = t.annotations.c
    rejected_doc = sa.exists().where(a.email_id == E.id, a.status == "rejected")
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
        count(~_kept_documents()).label("no_documents"),
        count(~_kept_documents(), recent, ~rejected_label, no_children).label("not_replied"),
        count(sa.or_(rejected_doc, rejected_label)).label("rejected"),
        count(recent, _filtered_documents()).label("filtered"),
    )
    async with svc.db.reading() as conn:
        row = (await conn.execute(stmt)).one()
    counts = {
        "total": row.total,
        "no_documents": row.no_documents,
        "recent_with_no_documents_not_replied": row.not_replied,
        "rejected": row.rejected,
        "recent_with_filtered_out_documents": row.filtered,
        # The reference's example names this key without "with_"; both are given.
        "recent_filtered_out_documents": row.filtered,
    }
    return web.json_response({"incoming": counts})


@routes.get("/api/v1/emails/{id}")
async def retrieve_email(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    async with svc.db.reading() as conn:
        row = await load_email(conn, who, path_id(request))
        (result,) = await _render(conn, svc, [row])
    return web.json_response(result)


@routes.get("/api/v1/emails/{id}/content")
async def email_content(request: web.Request) -> web.StreamResponse:
    """The raw message exactly as received, sent from its blob in pieces."""
    svc, who = services(request), actor(request)
    async with svc.db.reading() as conn:
        row = await load_email(conn, who, path_id(request))
    headers = {
        "Content-Type": "message/rfc822",
        "Content-Disposition": f'attachment; filename="email-{row.id}.eml"',
    }
    return await blob_response(svc, row.raw_blob, f"email {row.id}", headers)


def _patch_values(svc: Services, data: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key in READ_ONLY_FIELDS:
            continue
        if key == "subject":
            if value is not None and not isinstance(value, str):
                raise BadRequest("subject: expected a string or null.")
            values["subject"] = value
        elif key in ("body_text_plain", "body_text_html"):
            if not isinstance(value, str):
                raise BadRequest(f"{key}: expected a string.")
            values[key] = value.encode("utf-8")[:BODY_BYTES].decode("utf-8", "ignore")
        elif key == "metadata":
            if not isinstance(value, dict):
                raise BadRequest("metadata: expected a JSON object.")
            values["metadata"] = value
        elif key == "labels":
            values["labels"] = _labels(value)
        elif key == "parent":
            values["parent_id"] = svc.urls.optional_id_from(value, "emails", "parent")
        else:
            raise BadRequest(f"{key}: unknown field.")
    return values


def _labels(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest("labels: expected a list of strings.")
    unknown = sorted(set(value) - LABELS)
    if unknown:
        raise BadRequest(
            f"labels: unknown label {unknown[0]!r} (allowed: {', '.join(sorted(LABELS))})."
        )
    return list(dict.fromkeys(value))


@routes.patch("/api/v1/emails/{id}")
async def patch_email(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    email_id = path_id(request)
    data = await read_object(request)
    async with svc.db.transaction() as conn:
        await load_email(conn, who, email_id)
        who.require_annotator()
        values = _patch_values(svc, data)
        parent_id = values.get("parent_id")
        if parent_id is not None:
            if parent_id == email_id:
                raise BadRequest("parent: an email cannot be its own parent.")
            visible = await conn.execute(
                sa.select(E.id).where(E.id == parent_id, visible_emails(who))
            )
            if visible.first() is None:
                raise BadRequest(f"parent: email {parent_id} not found.")
        if values:
            await conn.execute(sa.update(t.emails).where(E.id == email_id).values(**values))
        row = await load_email(conn, who, email_id)
        (result,) = await _render(conn, svc, [row])
    return web.json_response(result)


# --- POST /emails/import -------------------------------------------------------------------


def _import_rules(svc: Services) -> BodyRules:
    limit = svc.settings.smtp.max_message_bytes
    return BodyRules(
        # The raw message may use the whole SMTP limit; the form fields come on top.
        max_body_bytes=limit + MAX_VALUES_BYTES + svc.settings.limits.max_metadata_bytes + 65536,
        # `raw_message` is a file part (curl -F raw_message=@x.eml, the SDK): streamed, not a field.
        field_limits={
            "recipient": MAX_RECIPIENT_BYTES,
            "metadata": svc.settings.limits.max_metadata_bytes,
            "values": MAX_VALUES_BYTES,
        },
        idle_timeout_s=svc.settings.limits.upload_idle_timeout_s,
    )


def import_values(body: ReceivedBody) -> dict[str, Any]:
    values = json_object_field(body, "values")
    for key, value in values.items():
        if not key.startswith(IMPORT_PREFIX) or key == IMPORT_PREFIX:
            raise BadRequest(f"values: key {key!r} must start with {IMPORT_PREFIX!r}.")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise BadRequest(f"values.{key}: expected a string, number, boolean or null.")
    return values


async def _raw_message_key(svc: Services, body: ReceivedBody) -> tuple[str, int]:
    """The raw message (the one file part) as a durable blob."""
    if len(body.files) != 1:
        raise BadRequest("raw_message: exactly one raw message (a file part) is required.")
    writer = body.files[0].writer
    if writer.size == 0:
        raise BadRequest("raw_message: the message is empty.")
    limit = svc.settings.smtp.max_message_bytes
    if writer.size > limit:
        raise PayloadTooLarge(
            f"raw_message: larger than the limit of {limit} bytes (smtp.max_message_bytes)."
        )
    return await writer.commit(), writer.size


async def _import_target(svc: Services, who: Actor, body: ReceivedBody) -> Target:
    recipient = (body.fields.get("recipient") or "").strip()
    if not recipient:
        raise BadRequest("recipient: the address of an inbox is required.")
    async with svc.db.reading() as conn:
        found = await lookup(conn, recipient)
    if found.queue_status is not None and found.target is None:
        raise ConflictStatus(
            f"recipient: the queue of inbox {recipient} does not accept documents while its "
            f"status is {found.queue_status}."
        )
    if found.target is None or found.target.organization_id != who.organization_id:
        raise BadRequest(f"recipient: no inbox with the address {recipient!r}.")
    return found.target


async def _task_for_duplicate(svc: Services, who: Actor, email_id: int) -> int:
    """A resent import of a stored message: a finished task pointing at the stored email."""
    now = utcnow()
    async with svc.db.transaction() as conn:
        result = await conn.execute(
            t.tasks.insert()
            .values(
                organization_id=who.organization_id,
                type="email_imported",
                status="succeeded",
                email_id=email_id,
                creator_id=who.user_id,
                content={},
                created_at=now,
                expires_at=now + TASK_LIFETIME,
            )
            .returning(t.tasks.c.id)
        )
        return int(result.scalar_one())


@routes.post("/api/v1/emails/import")
async def import_email(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    who.require_admin()
    body = await receive_body(request, svc.blobs, _import_rules(svc))
    try:
        metadata = json_object_field(body, "metadata")
        values = import_values(body)
        target = await _import_target(svc, who, body)
        raw_key, raw_size = await _raw_message_key(svc, body)
    except BaseException:
        await discard_quietly(body)
        raise
    mail = IncomingMail(
        raw=RawMessage(raw_key, raw_size),
        mail_from="",
        targets=[target],
        creator_id=who.user_id,
        metadata=metadata,
        values=values,
        task_type="email_imported",
    )
    delivered = await svc.mail_intake.deliver(mail)
    if delivered.task_ids:
        task_id = delivered.task_ids[0]
    else:
        task_id = await _task_for_duplicate(svc, who, delivered.duplicate_ids[0])
    return web.json_response({"url": svc.urls.to("tasks", task_id)}, status=202)


# --- POST /queues/{id}/suggested_recipients -------------------------------------------------

_NAME_SEPARATORS = re.compile(r"[._\-+]+")


def name_from_address(address: str) -> str:
    """`don.joe@corp.us` → `Don Joe` (what Rossum shows when the header has no name)."""
    local = address.split("@", 1)[0]
    return " ".join(w.capitalize() for w in _NAME_SEPARATORS.split(local) if w)


@routes.post("/api/v1/queues/{id}/suggested_recipients")
async def suggested_recipients(request: web.Request) -> web.Response:
    """The senders of the emails behind the given annotations and email threads (no duplicates).

    Postroom has no separate thread objects: every incoming email starts its own thread, so an
    `email_threads` URL's id is read as the id of that email.
    """
    svc, who = services(request), actor(request)
    queue_id = path_id(request)
    data = await read_object(request)
    annotation_ids = svc.urls.ids_from(data.get("annotations") or [], "annotations", "annotations")
    thread_ids = svc.urls.ids_from(
        data.get("email_threads") or [], "email_threads", "email_threads"
    )
    a = t.annotations.c
    async with svc.db.reading() as conn:
        await require_visible_queue(conn, who, queue_id)
        via_annotations = sa.select(a.email_id).where(
            a.id.in_(annotation_ids), a.organization_id == who.organization_id
        )
        rows = await conn.execute(
            sa.select(E.from_email, E.from_name)
            .where(
                visible_emails(who),
                sa.or_(E.id.in_(via_annotations), E.id.in_(thread_ids)),
            )
            .order_by(E.id)
        )
        senders = rows.all()
    results: list[dict[str, str]] = []
    seen: set[str] = set()
    for address, name in senders:
        if not address or address.lower() in seen:
            continue
        seen.add(address.lower())
        results.append(
            {
                "source": "email_header",
                "email": address,
                "name": name or name_from_address(address),
            }
        )
    return web.json_response({"results": results})
