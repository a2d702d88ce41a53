"""The aiosmtpd hooks: what EHLO advertises, which MAIL and RCPT commands are accepted, and
what a delivered message becomes.

- EHLO: SIZE <smtp.max_message_bytes>, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES, and STARTTLS
  when a certificate is configured (never AUTH: Postroom takes mail for its inboxes only).
- MAIL: `SIZE=` over the limit → 552 5.3.4; per-address message rate limit → 451 4.7.1.
- RCPT: an inbox of an `active` queue (case-insensitive) → 250; an inbox whose queue is being
  deleted → 550 5.2.1; anything else → 550 5.1.1, slowed down and past a limit answered
  421 4.7.0 with the connection closed (`smtp.probing`). Postroom never relays.
- DATA (after `session.PostroomSMTP` spooled the message into the blob store): the intake
  service authenticates and delivers it; 250 only once every record is committed, 550 5.7.1
  when DMARC fails and every recipient inbox drops such mail, 451 4.7.0 when DMARC could not
  be evaluated (DNS) for such an inbox, 451 4.3.0 on any failure of ours.

The recipient lookup and every record belong to the intake (`intake.service.Intake`); this
module only maps their outcomes to replies. `MailEnvelope` is the envelope the hooks fill in.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from postroom import logs, metrics
from postroom.clock import utcnow
from postroom.domain.mail_log import MailLogEntry
from postroom.intake.mail_records import Delivered, IncomingMail, RawMessage
from postroom.intake.recipients import Target
from postroom.intake.service import Intake
from postroom.smtp import replies
from postroom.smtp.probing import ProbeGuard
from postroom.urls import digits

log = logging.getLogger("postroom.smtp")

MAX_RECIPIENTS = 100


def _size_param(mail_options: list[str]) -> int | bool | None:
    """The `SIZE=` MAIL parameter: its value, None when absent, False when malformed."""
    for option in mail_options:
        key, _, value = option.partition("=")
        if key.upper() == "SIZE":
            return int(value) if digits(value) and len(value) <= 18 else False
    return None


class MailEnvelope(Envelope):
    def __init__(self) -> None:
        super().__init__()
        self.targets: list[Target] = []
        # For the mail log: when MAIL was accepted, every RCPT with its reply, the outcome.
        self.started_at: datetime | None = None
        self.recipients: list[dict[str, str]] = []
        self.delivered: Delivered | None = None
        self.journaled = False
        self.client_ip: str | None = None
        self.helo = ""


class MailSession(Session):
    """One connection's state: aiosmtpd's, and its unknown recipients (`smtp.probing`)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.unknown_recipients = 0


class InboxHandler:
    def __init__(self, intake: Intake, *, starttls: bool) -> None:
        self.intake = intake
        self.rate_limits = intake.rt.rate_limits
        self.max_bytes = intake.rt.settings.smtp.max_message_bytes
        self.starttls = starttls
        self.probes = ProbeGuard(intake.rt.settings.smtp)

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        lines = [responses[0].replace("250 ", "250-", 1)]
        lines += [f"250-SIZE {self.max_bytes}", "250-8BITMIME", "250-SMTPUTF8"]
        if self.starttls and not getattr(server, "_tls_protocol", None):
            lines.append("250-STARTTLS")
        lines += ["250-ENHANCEDSTATUSCODES", "250 HELP"]
        return lines

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: MailEnvelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        size = _size_param(mail_options)
        if size is False:
            return replies.BAD_SIZE_PARAM
        if isinstance(size, int) and size > self.max_bytes:
            metrics.SMTP_MESSAGES.labels(outcome="rejected", reason="too_large").inc()
            return self._refused_mail(session, address, replies.SIZE_EXCEEDED, size)
        if not self.rate_limits.smtp_message_allowed(peer_address(session.peer)):
            metrics.SMTP_MESSAGES.labels(outcome="rejected", reason="rate_limited").inc()
            return self._refused_mail(session, address, replies.RATE_LIMITED_MESSAGES, size)
        envelope.started_at = utcnow()
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        envelope.client_ip = peer_address(session.peer)
        envelope.helo = session.host_name or ""
        return replies.SENDER_OK

    async def handle_RCPT(
        self,
        server: SMTP,
        session: MailSession,
        envelope: MailEnvelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = await self._recipient(session, envelope, address, rcpt_options)
        if len(envelope.recipients) < MAX_RECIPIENTS:
            envelope.recipients.append({"address": address, "reply": reply})
        return reply

    async def _recipient(
        self, session: MailSession, envelope: MailEnvelope, address: str, rcpt_options: list[str]
    ) -> str:
        client = peer_address(session.peer)
        if self.probes.blocked(client, session.unknown_recipients):
            metrics.SMTP_MESSAGES.labels(outcome="rejected", reason="recipient_probing").inc()
            return replies.TOO_MANY_UNKNOWN_RECIPIENTS
        if len(envelope.targets) >= MAX_RECIPIENTS:
            return replies.TOO_MANY_RECIPIENTS
        try:
            found = await self.intake.recipient(address)
        except Exception:  # any database fault: the sender retries later
            log.exception("recipient lookup failed for %r", address)
            return replies.LOOKUP_FAILED
        if found.target is None:
            reason = "unknown_recipient" if found.queue_status is None else "queue_deleted"
            metrics.SMTP_MESSAGES.labels(outcome="rejected", reason=reason).inc()
            if found.queue_status is None:
                session.unknown_recipients += 1
                delay = self.probes.unknown_recipient(client)
                if delay:
                    await asyncio.sleep(delay)
                return replies.UNKNOWN_RECIPIENT
            return replies.QUEUE_DELETED
        if all(t.inbox_id != found.target.inbox_id for t in envelope.targets):
            envelope.targets.append(found.target)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return replies.RECIPIENT_OK

    async def handle_VRFY(
        self, server: SMTP, session: Session, envelope: Envelope, address: str
    ) -> str:
        return replies.VRFY_REFUSED

    async def deliver(self, envelope: MailEnvelope, raw: RawMessage) -> str:
        """Records for a spooled message; the reply to send (250 only after the commit)."""
        mail = IncomingMail(
            raw=raw,
            mail_from=envelope.mail_from or "",
            targets=list(envelope.targets),
            client_ip=envelope.client_ip,
            helo=envelope.helo,
        )
        try:
            delivered = await self.intake.deliver(mail)
        except Exception as error:  # every failure of ours is transient for the sender
            reply = replies.for_error(error)
            if reply == replies.STORAGE_FAILED:
                log.exception("storing a message failed; answering 451")
                metrics.SMTP_MESSAGES.labels(outcome="rejected", reason="internal_error").inc()
            elif reply == replies.STORAGE_FULL:
                logs.event(log, "mail deferred: storage full", level=logging.ERROR)
                metrics.SMTP_MESSAGES.labels(outcome="rejected", reason="storage_full").inc()
            elif reply == replies.MESSAGE_STRUCTURE:
                # Permanent: one line, no traceback; the sender bounces it and does not retry.
                logs.event(log, "mail refused", level=logging.WARNING, reason=str(error))
                metrics.SMTP_MESSAGES.labels(outcome="rejected", reason="structure").inc()
            elif reply == replies.QUEUE_DELETED:
                metrics.SMTP_MESSAGES.labels(outcome="rejected", reason="queue_deleted").inc()
            else:
                metrics.SMTP_MESSAGES.labels(outcome="rejected", reason="dmarc").inc()
            return reply
        envelope.delivered = delivered
        logs.event(
            log,
            "mail accepted",
            emails=",".join(map(str, delivered.email_ids)) or None,
            duplicates=",".join(map(str, delivered.duplicate_ids)) or None,
            inboxes=",".join(t.inbox_email for t in mail.targets),
            size=raw.size,
        )
        return replies.STORED

    def _refused_mail(self, session: Session, address: str, reply: str, size: Any) -> str:
        """A MAIL refused: the transaction ends here; log it."""
        envelope = MailEnvelope()
        envelope.started_at = utcnow()
        envelope.mail_from = address
        self.journal(session, envelope, reply, size if isinstance(size, int) else None)
        return reply

    def journal(
        self, session: Session, envelope: MailEnvelope, reply: str, size: int | None = None
    ) -> None:
        """Log a finished transaction (once; detached: never delays nor fails the session)."""
        if envelope.journaled or envelope.started_at is None:
            return
        envelope.journaled = True
        try:
            delivered = envelope.delivered
            email_ids = [*delivered.email_ids, *delivered.duplicate_ids] if delivered else []
            self.intake.journal.write(
                MailLogEntry(
                    started_at=envelope.started_at,
                    finished_at=utcnow(),
                    client_address=peer_address(session.peer),
                    helo=str(session.host_name or ""),
                    mail_from=envelope.mail_from or "",
                    reply=reply,
                    recipients=envelope.recipients,
                    size=size,
                    queue_id=envelope.targets[0].queue_id if envelope.targets else None,
                    email_ids=email_ids,
                    files=delivered.files if delivered else [],
                )
            )
        except Exception:
            log.exception("could not log an SMTP transaction")

    async def handle_exception(self, error: Exception) -> str:
        log.error("SMTP session error", exc_info=error)
        return replies.STORAGE_FAILED


def peer_address(peer: Any) -> str:
    return peer[0] if isinstance(peer, tuple) and peer else str(peer)
