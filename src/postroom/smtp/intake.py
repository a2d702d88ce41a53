"""Mail intake: a durable raw message + its recipient inboxes → email, upload, documents,
annotations and jobs, committed in one transaction. Shared by the SMTP listener and
`POST /emails/import`.

Order (notes/measured-facts.md): the raw message is already a durable blob when `deliver` is
called; its attachments are parsed off the loop and written as durable blobs; then one database
transaction creates, for every recipient inbox, the email record and — through
`intake.accept.accept_files` — upload, documents, annotations (`importing`) and jobs. Only after
that commit may the caller answer 250 / 202. A failure anywhere raises; nothing is half-created
(a blob without a record is an orphan the store tolerates).

A sending MTA that lost our 250 sends the message again: an inbox that already holds an email with
the same Message-ID and the same raw bytes (sha256) does not get a second one.

Parsing holds a whole message in memory (the `email` package), so parses run under a byte budget:
several large messages in flight wait for each other instead of exhausting memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom import metrics
from postroom.clock import utcnow
from postroom.db import tables as t
from postroom.errors import ConflictStatus
from postroom.intake.accept import StoredFile, Submission, accept_files
from postroom.intake.sniff import SNIFF_BYTES, accepted_mime_types, mime_accepted, sniff_mime
from postroom.services import Services
from postroom.smtp import notify, senders
from postroom.smtp.parse import Found, ParsedMail, parse_message

log = logging.getLogger("postroom.smtp")

ACTIVE = "active"
UNSUPPORTED_TYPE = "unsupported_mime_type"
_WRITE_SLICE = 1024 * 1024
# A parsed message costs about twice its raw size in memory (text + decoded attachments).
_PARSE_COST_FACTOR = 2
_PG_DEDUPE_LOCK = 727_004


@dataclass(frozen=True)
class Target:
    """A recipient inbox the mail is delivered to (resolved at RCPT or from `recipient`)."""

    address: str
    inbox_id: int
    inbox_email: str
    queue_id: int
    organization_id: int


@dataclass(frozen=True)
class Lookup:
    """An address looked up: the target if its queue is active, else why not."""

    target: Target | None
    queue_status: str | None  # None: no inbox with that address


@dataclass
class IncomingMail:
    raw_key: str
    raw_size: int
    mail_from: str  # envelope sender; "" or "<>" is the null sender
    targets: list[Target]
    creator_id: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)  # → annotation metadata
    values: dict[str, Any] = field(default_factory=dict)  # extra rir values (emails_import:*)
    task_type: str | None = None  # "email_imported" for POST /emails/import


@dataclass
class Delivered:
    email_ids: list[int] = field(default_factory=list)
    task_ids: list[int] = field(default_factory=list)
    # Emails already stored from an earlier copy of the same message (a resend).
    duplicate_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Kept:
    """A file of the message, durable in the blob store."""

    file: StoredFile
    members: list[StoredFile] | None = None  # an expanded archive's files


class ByteBudget:
    """A semaphore counted in bytes; one request larger than the budget runs alone."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._used = 0
        self._changed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def reserve(self, amount: int) -> AsyncIterator[None]:
        amount = min(amount, self.capacity)
        async with self._changed:
            await self._changed.wait_for(lambda: self._used + amount <= self.capacity)
            self._used += amount
        try:
            yield
        finally:
            async with self._changed:
                self._used -= amount
                self._changed.notify_all()


async def lookup(conn: AsyncConnection, address: str) -> Lookup:
    """The inbox (and its queue) an address names, matched case-insensitively."""
    i, q = t.inboxes.c, t.queues.c
    rows = (
        await conn.execute(
            sa.select(i.id, i.email, i.organization_id, q.id.label("queue_id"), q.status)
            .select_from(t.inboxes.join(t.queues, q.inbox_id == i.id))
            .where(i.email == address.strip().lower())
            .order_by(q.id)
        )
    ).all()
    if not rows:
        return Lookup(None, None)
    row = next((r for r in rows if r.status == ACTIVE), rows[0])
    if row.status != ACTIVE:
        return Lookup(None, row.status)
    return Lookup(Target(address, row.id, row.email, row.queue_id, row.organization_id), ACTIVE)


def rir_values(parsed: ParsedMail, extra: dict[str, Any]) -> dict[str, Any]:
    """The values datapoints may take from the message (`email_header:*`, `email_body:*`)."""
    values: dict[str, Any] = {f"email_header:{k}": v for k, v in parsed.headers.items()}
    if parsed.body_text_plain:
        values["email_body:text_plain"] = parsed.body_text_plain
    if parsed.body_text_html:
        values["email_body:text_html"] = parsed.body_text_html
    values.update(extra)
    return values


def files_for_queue(kept: list[_Kept], queue_settings: dict[str, Any]) -> list[StoredFile]:
    """The documents one queue gets: files of a type it does not accept are kept filtered."""
    accepted = accepted_mime_types(queue_settings)

    def judged(stored: StoredFile) -> StoredFile:
        if stored.attachment_status is None and not mime_accepted(stored.mime_type, accepted):
            return replace(stored, attachment_status=UNSUPPORTED_TYPE)
        return stored

    files: list[StoredFile] = []
    for item in kept:
        if item.members is None or not mime_accepted(item.file.mime_type, accepted):
            files.append(judged(item.file))
        else:
            files.extend(judged(m) for m in item.members)
    return files


class MailIntake:
    def __init__(self, services: Services, notifier: notify.Notifier) -> None:
        self.services = services
        self.notifier = notifier
        self.budget = ByteBudget(max(2 * services.settings.smtp.max_message_bytes, 64 << 20))

    async def deliver(self, mail: IncomingMail) -> Delivered:
        """Store one message for its recipient inboxes (raises on any failure: answer 451)."""
        async with self.budget.reserve(mail.raw_size * _PARSE_COST_FACTOR):
            path = self.services.blobs.path_of(mail.raw_key)
            parsed = await asyncio.to_thread(parse_message, path)
            kept = [await self._keep(found) for found in parsed.files]
        for name, why in parsed.skipped:
            log.info("email attachment %r not kept: %s", name, why)
        notices: list[notify.Notice] = []
        delivered = Delivered()
        async with self.services.db.transaction() as conn:
            if conn.dialect.name == "postgresql":
                # Two sessions delivering the same resent message must not both miss each other.
                await conn.execute(
                    sa.select(sa.func.pg_advisory_xact_lock(_PG_DEDUPE_LOCK, _lock_key(mail)))
                )
            for target in mail.targets:
                await self._deliver_to(conn, mail, target, parsed, kept, delivered, notices)
            if not delivered.email_ids and not delivered.duplicate_ids:
                raise ConflictStatus("No recipient inbox belongs to an active queue any more.")
        self.services.jobs_available.set()
        for notice in notices:
            self.notifier.schedule(notice)
        self._count(parsed, kept, delivered)
        return delivered

    async def _keep(self, found: Found) -> _Kept:
        stored = await self._store(found)
        members = None if found.members is None else [await self._store(m) for m in found.members]
        return _Kept(stored, members)

    async def _store(self, found: Found) -> StoredFile:
        """Write one file as a durable blob and sniff its type from the stored bytes."""
        writer = self.services.blobs.open_writer()
        async with writer:
            data = found.data
            for start in range(0, len(data), _WRITE_SLICE):
                await writer.write(data[start : start + _WRITE_SLICE])
            key = await writer.commit()
        found.data = b""  # durable now: let the memory go before the transaction
        path = self.services.blobs.path_of(key)
        mime = await asyncio.to_thread(sniff_mime, data[:SNIFF_BYTES], path)
        size = len(data)
        del data
        return StoredFile(key, size, mime, found.name, found.status)

    async def _deliver_to(
        self,
        conn: AsyncConnection,
        mail: IncomingMail,
        target: Target,
        parsed: ParsedMail,
        kept: list[_Kept],
        delivered: Delivered,
        notices: list[notify.Notice],
    ) -> None:
        earlier = await _already_stored(conn, target.inbox_id, parsed.message_id, mail.raw_key)
        if earlier is not None:
            delivered.duplicate_ids.append(earlier)
            return
        place = await _inbox_and_queue(conn, target)
        if place is None:
            log.warning("mail for %s skipped: its queue is no longer active", target.inbox_email)
            return
        inbox, queue = place
        sender = parsed.sender["email"] or _envelope_address(mail.mail_from)
        filtered = senders.filter_reason(inbox.filters, sender)
        email_id = await _insert_email(conn, mail, target, parsed, filtered)
        delivered.email_ids.append(email_id)
        annotations = 0
        files = [] if filtered else files_for_queue(kept, queue.settings or {})
        if files or mail.task_type:
            accepted = await accept_files(
                conn,
                Submission(
                    organization_id=target.organization_id,
                    queue_id=target.queue_id,
                    creator_id=mail.creator_id,
                    files=files,
                    metadata=mail.metadata,
                    rir_values=rir_values(parsed, mail.values),
                    email_id=email_id,
                    task_type=mail.task_type,
                ),
            )
            annotations = len(accepted.annotation_ids)
            if accepted.task_id is not None:
                delivered.task_ids.append(accepted.task_id)
        if filtered or annotations:
            return
        facts = notify.NoticeFacts(
            null_sender=_envelope_address(mail.mail_from) == "" and mail.creator_id is None,
            auto_submitted=parsed.auto_submitted,
            queue_settings=queue.settings or {},
            inbox_bounce_to=inbox.bounce_email_to,
            inbox_bounce_default=inbox.bounce_email_with_no_attachments,
            sender_email=sender,
            sender_name=parsed.sender["name"],
        )
        status = notify.decide(facts, self.services.settings.smtp.relay_host)
        await conn.execute(
            sa.update(t.emails).where(t.emails.c.id == email_id).values(notification_status=status)
        )
        if status == notify.PENDING:
            to_email, to_name = notify.recipient_of(facts)
            notices.append(
                notify.Notice(
                    email_id,
                    to_email,
                    to_name,
                    parsed.subject,
                    parsed.message_id,
                    target.inbox_email,
                )
            )

    def _count(self, parsed: ParsedMail, kept: list[_Kept], delivered: Delivered) -> None:
        if delivered.email_ids:
            metrics.SMTP_MESSAGES.labels(outcome="accepted", reason="stored").inc()
        elif delivered.duplicate_ids:
            metrics.SMTP_MESSAGES.labels(outcome="accepted", reason="duplicate").inc()
        stored = [k.file for k in kept] + [m for k in kept for m in (k.members or [])]
        metrics.UPLOADED_FILES.labels(channel="smtp").inc(len(stored) * len(delivered.email_ids))
        metrics.UPLOAD_BYTES.labels(channel="smtp").inc(sum(s.size for s in stored))


def _envelope_address(mail_from: str) -> str:
    return "" if mail_from in ("", "<>") else mail_from


def _lock_key(mail: IncomingMail) -> int:
    return int(mail.raw_key[:8], 16) - (1 << 31)


async def _already_stored(
    conn: AsyncConnection, inbox_id: int, message_id: str | None, raw_sha256: str
) -> int | None:
    """The email an earlier copy of this message became in this inbox, if any."""
    e = t.emails.c
    same_id = e.message_id.is_(None) if message_id is None else e.message_id == message_id
    stmt = sa.select(e.id).where(e.inbox_id == inbox_id, e.raw_sha256 == raw_sha256, same_id)
    return await conn.scalar(stmt.order_by(e.id).limit(1))


async def _inbox_and_queue(
    conn: AsyncConnection, target: Target
) -> tuple[sa.Row[Any], sa.Row[Any]] | None:
    inbox = (
        await conn.execute(
            sa.select(
                t.inboxes.c.filters,
                t.inboxes.c.bounce_email_to,
                t.inboxes.c.bounce_email_with_no_attachments,
            ).where(t.inboxes.c.id == target.inbox_id)
        )
    ).first()
    queue = (
        await conn.execute(
            sa.select(t.queues.c.status, t.queues.c.settings).where(
                t.queues.c.id == target.queue_id
            )
        )
    ).first()
    if inbox is None or queue is None or queue.status != ACTIVE:
        return None
    return inbox, queue


async def _insert_email(
    conn: AsyncConnection,
    mail: IncomingMail,
    target: Target,
    parsed: ParsedMail,
    filtered: str | None,
) -> int:
    listed = {a["email"].lower() for a in parsed.to + parsed.cc}
    # The envelope recipient the headers do not show was a blind copy. Only this record's own
    # inbox is named: the other recipients' addresses are not this organization's business.
    bcc = [] if target.address.lower() in listed else [{"email": target.address, "name": ""}]
    result = await conn.execute(
        t.emails.insert()
        .values(
            organization_id=target.organization_id,
            queue_id=target.queue_id,
            inbox_id=target.inbox_id,
            creator_id=mail.creator_id,
            type="incoming",
            subject=parsed.subject,
            from_email=(parsed.sender["email"] or _envelope_address(mail.mail_from))[:512],
            from_name=parsed.sender["name"][:512],
            to=parsed.to,
            cc=parsed.cc,
            bcc=bcc,
            body_text_plain=parsed.body_text_plain,
            body_text_html=parsed.body_text_html,
            message_id=parsed.message_id,
            raw_blob=mail.raw_key,
            raw_sha256=mail.raw_key,
            labels=[],
            metadata={},
            filtered_reason=filtered,
            created_at=utcnow(),
        )
        .returning(t.emails.c.id)
    )
    return int(result.scalar_one())
