"""The records one delivered message becomes, for every recipient inbox, in one unit of the
group commit: the email, and through `intake.accept` the upload, documents, annotations and jobs.

Per inbox: the queue must still take documents (`accept.admit`; otherwise the inbox is skipped);
a sending MTA that lost our 250 sends the message again, so an inbox that already holds an email
with the same Message-ID and the same raw bytes (sha256) does not get a second one. The same
Message-ID from the same sender with other bytes is neither merged nor silently duplicated: the
new email is stored and flagged (`message_id_conflict_id` names the earlier one, shown as the
email's `message_id_conflict`) and a warning is logged, since it is a tampered or replayed copy,
or a sender reusing ids, that someone should look at; the inbox's
sender filters may keep the files out; the file-type rule (`accept.judge`) keeps files of a type
the queue refuses as documents only; and an email left without a processable file asks for a
notice to its sender (`intake.notify`), sent after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom import logs
from postroom.blobs.local import BlobWriter
from postroom.clock import utcnow
from postroom.db import tables as t
from postroom.db.dialect import MAIL_DEDUPE_LOCK, advisory_lock
from postroom.errors import ConflictStatus, NotFound
from postroom.intake import notify, senders
from postroom.intake.accept import KeptFile, Submission, accept_files, admit, judge
from postroom.intake.mail_auth import Verdict
from postroom.intake.mime import ParsedMail
from postroom.intake.recipients import Target
from postroom.status import EmailType, NotificationStatus

log = logging.getLogger("postroom.smtp")


@dataclass
class RawMessage:
    """The message as received. `key` is its sha256 (the blob key). When `pending` is set the
    bytes are written but not yet durable: the intake commits them (fsync, rename) while it
    parses — from `data`, the whole message kept in memory when it is small."""

    key: str
    size: int
    data: bytes | None = None
    pending: BlobWriter | None = None


@dataclass
class IncomingMail:
    raw: RawMessage
    mail_from: str  # envelope sender; "" or "<>" is the null sender
    targets: list[Target]
    creator_id: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)  # → annotation metadata
    values: dict[str, Any] = field(default_factory=dict)  # extra rir values (emails_import:*)
    task_type: str | None = None  # "email_imported" for POST /emails/import
    client_ip: str | None = None  # the connecting SMTP client (None: posted over HTTP)
    helo: str = ""  # the name the SMTP client gave in EHLO/HELO
    verdict: Verdict | None = None  # its authentication (intake.mail_auth), set by the intake


@dataclass
class Delivered:
    email_ids: list[int] = field(default_factory=list)
    task_ids: list[int] = field(default_factory=list)
    # Emails already stored from an earlier copy of the same message (a resend).
    duplicate_ids: list[int] = field(default_factory=list)
    # Each file of the message for the mail log: {"name", "kept", "status"} (why it has no
    # annotation, or why it was dropped).
    files: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Message:
    """A message parsed, its files durable: what its records are made of."""

    mail: IncomingMail
    parsed: ParsedMail
    kept: list[KeptFile]


# Statements run for every message are built once (bound parameters): SQLAlchemy then skips
# rebuilding and re-keying them, a large part of the per-message CPU otherwise.
_I, _Q, _E = t.inboxes.c, t.queues.c, t.emails.c


def _place_statement(with_message_id: bool) -> sa.Select[Any]:
    same_id = (
        _E.message_id == sa.bindparam("message_id") if with_message_id else _E.message_id.is_(None)
    )
    in_inbox = _E.inbox_id == sa.bindparam("inbox_id")
    earlier = (
        sa.select(_E.id)
        .where(in_inbox, _E.raw_sha256 == sa.bindparam("sha"), same_id)
        .order_by(_E.id)
        .limit(1)
        .scalar_subquery()
    )
    # Same Message-ID and sender, other bytes (the dedupe index serves it: inbox, Message-ID).
    conflict: sa.ColumnElement[Any] = sa.null()
    if with_message_id:
        conflict = (
            sa.select(_E.id)
            .where(
                in_inbox,
                same_id,
                _E.raw_sha256 != sa.bindparam("sha"),
                sa.func.lower(_E.from_email) == sa.bindparam("sender"),
            )
            .order_by(_E.id)
            .limit(1)
            .scalar_subquery()
        )
    return (
        sa.select(
            _I.filters,
            _I.bounce_email_to,
            _I.bounce_email_with_no_attachments,
            earlier.label("earlier"),
            conflict.label("conflict"),
        )
        .select_from(t.inboxes.join(t.queues, _Q.inbox_id == _I.id))
        .where(_I.id == sa.bindparam("inbox_id"), _Q.id == sa.bindparam("queue_id"))
    )


_PLACE = {True: _place_statement(True), False: _place_statement(False)}
_INSERT_EMAIL = t.emails.insert().returning(_E.id)


def rir_values(parsed: ParsedMail, extra: dict[str, Any]) -> dict[str, Any]:
    """The values datapoints may take from the message (`email_header:*`, `email_body:*`)."""
    values: dict[str, Any] = {f"email_header:{k}": v for k, v in parsed.headers.items()}
    if parsed.body_text_plain:
        values["email_body:text_plain"] = parsed.body_text_plain
    if parsed.body_text_html:
        values["email_body:text_html"] = parsed.body_text_html
    values.update(extra)
    return values


async def write_mail(
    conn: AsyncConnection, message: Message, relay_host: str, allow_notice: Callable[[str], bool]
) -> tuple[Delivered, list[notify.Notice]]:
    """Every record of one message (raises ConflictStatus when no inbox takes it any more)."""
    notices: list[notify.Notice] = []
    delivered = Delivered()
    # Two sessions delivering the same resent message must not both miss each other.
    await advisory_lock(conn, MAIL_DEDUPE_LOCK, int(message.mail.raw.key[:8], 16) - (1 << 31))
    for target in message.mail.targets:
        notice = await _deliver_to(conn, message, target, delivered, (relay_host, allow_notice))
        if notice is not None:
            notices.append(notice)
    if not delivered.email_ids and not delivered.duplicate_ids:
        raise ConflictStatus("No recipient inbox belongs to an active queue any more.")
    return delivered, notices


async def _deliver_to(
    conn: AsyncConnection,
    message: Message,
    target: Target,
    delivered: Delivered,
    notices: tuple[str, Callable[[str], bool]],
) -> notify.Notice | None:
    mail, parsed = message.mail, message.parsed
    sender = _sender(mail, parsed)
    try:
        queue = await admit(conn, target.organization_id, target.queue_id)
        place = await _place(conn, target, parsed.message_id, mail.raw.key, sender)
    except (NotFound, ConflictStatus):
        log.warning("mail for %s skipped: its queue is no longer active", target.inbox_email)
        return None
    if place.earlier is not None:
        delivered.duplicate_ids.append(place.earlier)
        return None
    filtered = senders.filter_reason(place.filters, sender)
    files = [] if filtered else judge(message.kept, queue.settings, refused_as_documents=True)
    facts = notify.NoticeFacts(
        null_sender=_envelope_address(mail.mail_from) == "" and mail.creator_id is None,
        auto_submitted=parsed.auto_submitted,
        queue_settings=queue.settings,
        inbox_bounce_to=place.bounce_email_to,
        inbox_bounce_default=place.bounce_email_with_no_attachments,
        sender_email=sender,
        sender_name=parsed.sender["name"],
        envelope_sender=_envelope_address(mail.mail_from),
        authenticated=mail.verdict is not None and mail.verdict.authenticated,
    )
    # accept_files gives every file without attachment_status an annotation.
    processable = any(f.attachment_status is None for f in files)
    status = None
    if not filtered and not processable:
        relay, allow_notice = notices
        status = notify.decide(facts, relay)
        if status == NotificationStatus.PENDING and not allow_notice(sender):
            status = NotificationStatus.RATE_LIMITED
    email_id = await _insert_email(conn, mail, target, parsed, filtered, status, place.conflict)
    delivered.email_ids.append(email_id)
    if place.conflict is not None:
        logs.event(
            log,
            "mail flagged: Message-ID already received from this sender with other content",
            level=logging.WARNING,
            email=email_id,
            earlier_email=place.conflict,
            inbox=target.inbox_id,
            message_id=parsed.message_id,
        )
    if files or mail.task_type:
        submission = Submission(
            organization_id=target.organization_id,
            creator_id=mail.creator_id,
            files=files,
            metadata=mail.metadata,
            rir_values=rir_values(parsed, mail.values),
            email_id=email_id,
            task_type=mail.task_type,
        )
        accepted = await accept_files(conn, submission, queue)
        if accepted.task_id is not None:
            delivered.task_ids.append(accepted.task_id)
    if status != NotificationStatus.PENDING:
        return None
    return notify.notice_for(email_id, facts, parsed.subject, parsed.message_id, target.inbox_email)


def _envelope_address(mail_from: str) -> str:
    return "" if mail_from in ("", "<>") else mail_from


def _sender(mail: IncomingMail, parsed: ParsedMail) -> str:
    """The sender an email record shows as `from.email`: the From header's, else the envelope's."""
    return parsed.sender["email"] or _envelope_address(mail.mail_from)


async def _place(
    conn: AsyncConnection, target: Target, message_id: str | None, raw_sha256: str, sender: str
) -> Any:
    """In one query: the inbox's filters and notification fields, the email an earlier copy of
    this message became in this inbox (`earlier`), and an earlier email of this inbox with the
    same Message-ID and sender but other bytes (`conflict`). NotFound when the inbox no longer
    feeds the queue."""
    params: dict[str, Any] = {
        "inbox_id": target.inbox_id,
        "queue_id": target.queue_id,
        "sha": raw_sha256,
    }
    if message_id is not None:
        params["message_id"] = message_id
        params["sender"] = sender[:512].lower()
    row = (await conn.execute(_PLACE[message_id is not None], params)).first()
    if row is None:
        raise NotFound(f"Inbox {target.inbox_id} no longer feeds queue {target.queue_id}.")
    return row


async def _insert_email(
    conn: AsyncConnection,
    mail: IncomingMail,
    target: Target,
    parsed: ParsedMail,
    filtered: str | None,
    notification_status: str | None,
    conflict_id: int | None,
) -> int:
    listed = {a["email"].lower() for a in parsed.to + parsed.cc}
    # The envelope recipient the headers do not show was a blind copy. Only this record's own
    # inbox is named: the other recipients' addresses are not this organization's business.
    bcc = [] if target.address.lower() in listed else [{"email": target.address, "name": ""}]
    result = await conn.execute(
        _INSERT_EMAIL,
        {
            "organization_id": target.organization_id,
            "queue_id": target.queue_id,
            "inbox_id": target.inbox_id,
            "creator_id": mail.creator_id,
            "type": EmailType.INCOMING,
            "subject": parsed.subject,
            "from_email": _sender(mail, parsed)[:512],
            "from_name": parsed.sender["name"][:512],
            "to": parsed.to,
            "cc": parsed.cc,
            "bcc": bcc,
            "body_text_plain": parsed.body_text_plain,
            "body_text_html": parsed.body_text_html,
            "message_id": parsed.message_id,
            "message_id_conflict_id": conflict_id,
            "raw_blob": mail.raw.key,
            "raw_sha256": mail.raw.key,
            "labels": [],
            "metadata": {},
            "filtered_reason": filtered,
            "notification_status": notification_status,
            "authentication_results": mail.verdict.header if mail.verdict else None,
            "parent_id": None,
            "created_at": utcnow(),
        },
    )
    return int(result.scalar_one())
