"""Mail intake: a durable raw message + its recipient inboxes → email, upload, documents,
annotations and jobs, committed in one transaction. Shared by the SMTP listener and
`POST /emails/import`.

Order (notes/measured-facts.md): the raw message is already a durable blob when `deliver` is
called; its attachments are parsed off the loop and written as durable blobs; then one database
transaction creates, for every recipient inbox, the email record and — through
`intake.accept.accept_files` — upload, documents, annotations (`importing`) and jobs. Only after
that commit may the caller answer 250 / 202. Deliveries arriving together share one transaction
(`smtp.commits`: group commit, one savepoint each). A failure anywhere raises; nothing is half-created
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
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom import metrics
from postroom.clock import utcnow
from postroom.db import tables as t
from postroom.errors import ConflictStatus
from postroom.intake.accept import StoredFile, Submission, accept_files
from postroom.intake.blobs import BlobWriter
from postroom.intake.sniff import SNIFF_BYTES, accepted_mime_types, mime_accepted, sniff_mime
from postroom.services import Services
from postroom.smtp import notify, senders
from postroom.smtp.commits import CommitBatcher
from postroom.smtp.parse import SCAN_FROM_BYTES, Found, ParsedMail, parse_message

log = logging.getLogger("postroom.smtp")

ACTIVE = "active"
UNSUPPORTED_TYPE = "unsupported_mime_type"
_WRITE_SLICE = 1024 * 1024
# Memory a parse holds at its peak: the `email` package (small messages) about 8x the raw size;
# the scanner of large ones about its decoded files plus one slice (mimestream).
_SMALL_PARSE_FACTOR = 8
_LARGE_PARSE_FACTOR = 2
_PG_DEDUPE_LOCK = 727_004
_PARSE_INLINE_BYTES = 64 * 1024  # smaller messages are parsed on the loop (bounded: < 1 ms)
_PARALLEL_WRITES = 8  # attachment blobs written (and fsynced) at once per message


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
class RawMessage:
    """The message as received. `key` is its sha256 (the blob key). When `pending` is set the
    bytes are written but not yet durable: `deliver` commits them (fsync, rename) while it parses
    — from `data`, the whole message kept in memory when it is small."""

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


# Statements run for every message are built once (bound parameters): SQLAlchemy then skips
# rebuilding and re-keying them, a large part of the per-message CPU otherwise.
_I, _Q, _E = t.inboxes.c, t.queues.c, t.emails.c
_LOOKUP = (
    sa.select(_I.id, _I.email, _I.organization_id, _Q.id.label("queue_id"), _Q.status)
    .select_from(t.inboxes.join(t.queues, _Q.inbox_id == _I.id))
    .where(_I.email == sa.bindparam("address"))
    .order_by(_Q.id)
)


def _place_statement(with_message_id: bool) -> sa.Select[Any]:
    same_id = (
        _E.message_id == sa.bindparam("message_id") if with_message_id else _E.message_id.is_(None)
    )
    earlier = (
        sa.select(_E.id)
        .where(
            _E.inbox_id == sa.bindparam("inbox_id"), _E.raw_sha256 == sa.bindparam("sha"), same_id
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
            _Q.status,
            _Q.settings,
            earlier.label("earlier"),
        )
        .select_from(t.inboxes.join(t.queues, _Q.inbox_id == _I.id))
        .where(_I.id == sa.bindparam("inbox_id"), _Q.id == sa.bindparam("queue_id"))
    )


_PLACE = {True: _place_statement(True), False: _place_statement(False)}
_INSERT_EMAIL = t.emails.insert().returning(_E.id)


async def lookup(conn: AsyncConnection, address: str) -> Lookup:
    """The inbox (and its queue) an address names, matched case-insensitively."""
    rows = (await conn.execute(_LOOKUP, {"address": address.strip().lower()})).all()
    if not rows:
        return Lookup(None, None)
    row = next((r for r in rows if r.status == ACTIVE), rows[0])
    if row.status != ACTIVE:
        return Lookup(None, row.status)
    return Lookup(Target(address, row.id, row.email, row.queue_id, row.organization_id), ACTIVE)


def _parse_cost(size: int) -> int:
    factor = _SMALL_PARSE_FACTOR if size <= SCAN_FROM_BYTES else _LARGE_PARSE_FACTOR
    return size * factor


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
        # Several large messages in flight parse a few at a time: memory stays under this.
        self.budget = ByteBudget(max(3 * services.settings.smtp.max_message_bytes, 64 << 20))
        self.commits = CommitBatcher(services.db)

    async def deliver(self, mail: IncomingMail) -> Delivered:
        """Store one message for its recipient inboxes (raises on any failure: answer 451)."""
        parsed, kept = await self._durable_parts(mail.raw)
        for name, why in parsed.skipped:
            log.info("email attachment %r not kept: %s", name, why)

        async def write(conn: AsyncConnection) -> tuple[Delivered, list[notify.Notice]]:
            notices: list[notify.Notice] = []
            delivered = Delivered()
            if conn.dialect.name == "postgresql":
                # Two sessions delivering the same resent message must not both miss each other.
                await conn.execute(
                    sa.select(sa.func.pg_advisory_xact_lock(_PG_DEDUPE_LOCK, _lock_key(mail)))
                )
            for target in mail.targets:
                await self._deliver_to(conn, mail, target, parsed, kept, delivered, notices)
            if not delivered.email_ids and not delivered.duplicate_ids:
                raise ConflictStatus("No recipient inbox belongs to an active queue any more.")
            return delivered, notices

        delivered, notices = await self.commits.run(write)
        self.services.jobs_available.set()
        for notice in notices:
            self.notifier.schedule(notice)
        self._count(parsed, kept, delivered)
        return delivered

    async def _durable_parts(self, raw: RawMessage) -> tuple[ParsedMail, list[_Kept]]:
        """Parse the message and store its files; the raw message is made durable meanwhile.

        fsyncs issued together cost about one (the filesystem journal commits them at once),
        so the raw message's commit runs beside the parse and the attachments' commits.
        """
        commit = None if raw.pending is None else asyncio.ensure_future(raw.pending.commit())
        try:
            if raw.data is None and commit is not None:
                await commit  # the parser reads the stored file
            source: Path | bytes = (
                raw.data if raw.data is not None else self.services.blobs.path_of(raw.key)
            )
            async with self.budget.reserve(_parse_cost(raw.size)):
                if isinstance(source, bytes) and len(source) <= _PARSE_INLINE_BYTES:
                    # Well under a millisecond: cheaper than a worker thread fighting the loop
                    # for the GIL.
                    parsed = parse_message(source)
                else:
                    parsed = await asyncio.to_thread(parse_message, source)
                limit = asyncio.Semaphore(_PARALLEL_WRITES)
                kept = list(await asyncio.gather(*(self._keep(f, limit) for f in parsed.files)))
            if commit is not None:
                await commit
        except BaseException:
            if commit is not None:
                await asyncio.wait([commit])
                if commit.cancelled() or commit.exception() is not None:
                    assert raw.pending is not None
                    await raw.pending.abort()
            raise
        return parsed, kept

    async def _keep(self, found: Found, limit: asyncio.Semaphore) -> _Kept:
        async with limit:
            stored = await self._store(found)
        members = None
        if found.members is not None:
            members = list(
                await asyncio.gather(*(self._store_limited(m, limit) for m in found.members))
            )
        return _Kept(stored, members)

    async def _store_limited(self, found: Found, limit: asyncio.Semaphore) -> StoredFile:
        async with limit:
            return await self._store(found)

    async def _store(self, found: Found) -> StoredFile:
        """Write one file as a durable blob and sniff its type from its bytes."""
        data = found.data
        writer = self.services.blobs.open_writer()
        async with writer:
            for start in range(0, len(data), _WRITE_SLICE):
                await writer.write(data[start : start + _WRITE_SLICE])
            key = await writer.commit()
        found.data = b""  # durable now: let the memory go before the transaction
        head = data[:SNIFF_BYTES]
        if head.startswith(b"PK"):
            # A zip may be an Office file: sniff looks into its central directory on disk.
            mime = await asyncio.to_thread(sniff_mime, head, self.services.blobs.path_of(key))
        else:
            mime = sniff_mime(head)  # libmagic on 8 KiB: tens of microseconds
        return StoredFile(key, len(data), mime, found.name, found.status)

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
        place = await _place(conn, target, parsed.message_id, mail.raw.key)
        if place is None:
            log.warning("mail for %s skipped: its queue is no longer active", target.inbox_email)
            return
        if place.earlier is not None:
            delivered.duplicate_ids.append(place.earlier)
            return
        sender = parsed.sender["email"] or _envelope_address(mail.mail_from)
        filtered = senders.filter_reason(place.filters, sender)
        files = [] if filtered else files_for_queue(kept, place.settings or {})
        facts = notify.NoticeFacts(
            null_sender=_envelope_address(mail.mail_from) == "" and mail.creator_id is None,
            auto_submitted=parsed.auto_submitted,
            queue_settings=place.settings or {},
            inbox_bounce_to=place.bounce_email_to,
            inbox_bounce_default=place.bounce_email_with_no_attachments,
            sender_email=sender,
            sender_name=parsed.sender["name"],
        )
        # accept_files gives every file without attachment_status an annotation.
        processable = any(f.attachment_status is None for f in files)
        status = None
        if not filtered and not processable:
            status = notify.decide(facts, self.services.settings.smtp.relay_host)
        email_id = await _insert_email(conn, mail, target, parsed, filtered, status)
        delivered.email_ids.append(email_id)
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
            if accepted.task_id is not None:
                delivered.task_ids.append(accepted.task_id)
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
    return int(mail.raw.key[:8], 16) - (1 << 31)


async def _place(
    conn: AsyncConnection, target: Target, message_id: str | None, raw_sha256: str
) -> Any:
    """In one query: the inbox's filters and notification fields, the queue's settings, and the
    email an earlier copy of this message became in this inbox (`earlier`). None when the queue
    is no longer active."""
    params: dict[str, Any] = {
        "inbox_id": target.inbox_id,
        "queue_id": target.queue_id,
        "sha": raw_sha256,
    }
    if message_id is not None:
        params["message_id"] = message_id
    row = (await conn.execute(_PLACE[message_id is not None], params)).first()
    if row is None or row.status != ACTIVE:
        return None
    return row


async def _insert_email(
    conn: AsyncConnection,
    mail: IncomingMail,
    target: Target,
    parsed: ParsedMail,
    filtered: str | None,
    notification_status: str | None,
) -> int:
    listed = {a["email"].lower() for a in parsed.to + parsed.cc}
    # The envelope recipient the headers do not show was a blind copy. Only this record's own
    # inbox is named: the other recipients' addresses are not this organization's business.
    bcc = [] if target.address.lower() in listed else [{"email": target.address, "name": ""}]
    result = await conn.execute(
        _INSERT_EMAIL,
        dict(
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
            raw_blob=mail.raw.key,
            raw_sha256=mail.raw.key,
            labels=[],
            metadata={},
            filtered_reason=filtered,
            notification_status=notification_status,
            parent_id=None,
            created_at=utcnow(),
        ),
    )
    return int(result.scalar_one())
