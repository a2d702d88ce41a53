"""Notices back to the sender ("bounces" in Rossum's sense) through the configured outbound relay.

Only one notice exists: an email arrived with no attachment Postroom could process. It is sent
when the queue's `settings.email_notifications.email_with_no_attachments` is on (default true),
never to a null sender (`MAIL FROM:<>`), a bounce or robot address (MAILER-DAEMON, postmaster,
bounce-*, *-request…) or in answer to auto-submitted mail (RFC 3834), never with the files
attached, and with an empty return path so a bounce of the notice cannot loop.

Backscatter guard: anyone can forge a `From:`. A notice addressed to the author of the mail goes
out only when the author passed mail authentication (`intake.mail_auth`: DMARC pass, or an
aligned SPF/DKIM pass for a domain without a DMARC record); one addressed to the queue's own
notification recipient (or the inbox's `bounce_email_to`) does not need it. At most
`smtp.notices_per_sender_per_hour` notices answer the mail of one sender per hour (this
process). A notice
quotes nothing of the mail but the first SUBJECT_CHARS characters of its subject (and its
Message-ID, when well-formed, for threading): not the author's display name, not the body.

The outcome is written to the email's `notification_status`: `sent`, `failed: <reason>`, or
`not_sent: <why>` (no relay configured, disabled, null sender, bounce sender, auto-submitted,
no recipient, sender not authenticated, rate limited).

Sending happens after the mail was committed and answered: a slow or dead relay never delays a
250. A notice still pending when the process stops stays `pending` in the record.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from typing import Any

import aiosmtplib
import sqlalchemy as sa

from postroom.clock import utcnow
from postroom.db import tables as t
from postroom.intake.detached import Detached
from postroom.intake.senders import is_bounce_address
from postroom.ratelimit import SlidingWindows
from postroom.runtime import Runtime
from postroom.status import NotificationStatus

log = logging.getLogger("postroom.smtp")

N = NotificationStatus
SEND_TIMEOUT = 30.0
SUBJECT_CHARS = 100  # of the mail's subject quoted in the notice
_MESSAGE_ID = re.compile(r"^<[\x21-\x3b\x3d\x3f-\x7e]{1,200}@[\x21-\x3b\x3d\x3f-\x7e]{1,200}>$")


@dataclass(frozen=True)
class Notice:
    email_id: int
    to_email: str
    to_name: str
    subject: str
    in_reply_to: str | None
    inbox_email: str


@dataclass(frozen=True)
class NoticeFacts:
    """What decides whether a notice goes out for one stored email."""

    null_sender: bool
    auto_submitted: bool
    queue_settings: dict[str, Any]
    inbox_bounce_to: str | None
    inbox_bounce_default: bool
    sender_email: str
    sender_name: str
    envelope_sender: str = ""
    authenticated: bool = False  # the author passed mail authentication (intake.mail_auth)


def recipient_of(facts: NoticeFacts) -> tuple[str, str]:
    """Who gets the notice: the queue's notification recipient, the inbox's (deprecated)
    `bounce_email_to`, else the author of the mail."""
    settings = facts.queue_settings.get("email_notifications")
    configured = settings.get("recipient") if isinstance(settings, dict) else None
    if isinstance(configured, dict) and configured.get("email"):
        return str(configured["email"]), str(configured.get("name") or "")
    if facts.inbox_bounce_to:
        return facts.inbox_bounce_to, ""
    return facts.sender_email, facts.sender_name


def enabled(facts: NoticeFacts) -> bool:
    settings = facts.queue_settings.get("email_notifications")
    if isinstance(settings, dict) and "email_with_no_attachments" in settings:
        return bool(settings["email_with_no_attachments"])
    return facts.inbox_bounce_default


def decide(facts: NoticeFacts, relay_host: str) -> NotificationStatus:
    """The notification_status to record for an email with no processable attachment."""
    if not enabled(facts):
        return N.DISABLED
    if facts.null_sender:
        return N.NULL_SENDER
    if facts.auto_submitted:
        return N.AUTO_SUBMITTED
    to_email = recipient_of(facts)[0]
    if "@" not in to_email:
        return N.NO_RECIPIENT
    if any(
        is_bounce_address(a) for a in (to_email, facts.sender_email, facts.envelope_sender) if a
    ):
        return N.BOUNCE_SENDER
    if not relay_host:
        return N.NO_RELAY
    if to_author(facts) and not facts.authenticated:
        return N.UNAUTHENTICATED
    return N.PENDING


def to_author(facts: NoticeFacts) -> bool:
    """The notice would go to the mail's (unverified) author, not to a configured recipient."""
    return recipient_of(facts)[0] == facts.sender_email


def notice_for(
    email_id: int, facts: NoticeFacts, subject: str, message_id: str | None, inbox: str
) -> Notice:
    """The notice of an email: the author's display name and a malformed Message-ID are dropped,
    the subject cut to SUBJECT_CHARS."""
    to_email, to_name = recipient_of(facts)
    if to_author(facts):
        to_name = ""
    in_reply_to = message_id if message_id and _MESSAGE_ID.match(message_id) else None
    return Notice(email_id, to_email, to_name, subject[:SUBJECT_CHARS], in_reply_to, inbox)


class Notifier:
    """Sends notices in the background and records their outcome."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._sends = Detached()
        self._per_sender = SlidingWindows(rt.settings.smtp.notices_per_sender_per_hour, 3600.0)

    def allow(self, sender: str) -> bool:
        """Count one notice answering mail of `sender`; False when its hourly share is used."""
        return self._per_sender.allow(sender.strip().lower())

    def schedule(self, notice: Notice) -> None:
        self._sends.start(self._send(notice))

    async def drain(self, grace_s: float) -> None:
        """Wait (bounded) for notices in flight; used at shutdown."""
        await self._sends.drain(grace_s)

    def _message(self, notice: Notice) -> EmailMessage:
        smtp = self._rt.settings.smtp
        sender = smtp.notification_from or f"postroom-noreply@{smtp.domain}"
        message = EmailMessage()
        message["From"] = formataddr(("Postroom", sender))
        message["To"] = formataddr((notice.to_name, notice.to_email))
        subject = " ".join(notice.subject[:SUBJECT_CHARS].split())  # no folding tricks
        message["Subject"] = f"No documents found: {subject}"
        message["Date"] = format_datetime(utcnow())
        message["Message-ID"] = make_msgid(domain=smtp.domain)
        message["Auto-Submitted"] = "auto-replied"
        if notice.in_reply_to:
            message["In-Reply-To"] = notice.in_reply_to
            message["References"] = notice.in_reply_to
        message.set_content(
            f"Your email to {notice.inbox_email} was received, but it had no attachment that\n"
            "could be processed (for example a PDF or an image of an invoice), so no document\n"
            "was created from it.\n\n"
            "Please send the documents again as attachments of a new email.\n"
        )
        return message

    async def _send(self, notice: Notice) -> None:
        smtp = self._rt.settings.smtp
        try:
            await aiosmtplib.send(
                self._message(notice),
                sender="",  # empty return path: a bounce of this notice goes nowhere (RFC 3834)
                recipients=[notice.to_email],
                hostname=smtp.relay_host,
                port=smtp.relay_port,
                username=smtp.relay_username or None,
                password=smtp.relay_password or None,
                start_tls=smtp.relay_starttls,
                timeout=SEND_TIMEOUT,
            )
            status: str = N.SENT
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            log.warning("notification for email %s not sent: %r", notice.email_id, error)
            status = f"failed: {type(error).__name__}"[:64]
        try:
            async with self._rt.db.transaction() as conn:
                await conn.execute(
                    sa.update(t.emails)
                    .where(t.emails.c.id == notice.email_id)
                    .values(notification_status=status)
                )
        except Exception:  # the outcome is only bookkeeping: log it, never crash the loop
            log.exception("could not record the notification status of email %s", notice.email_id)
