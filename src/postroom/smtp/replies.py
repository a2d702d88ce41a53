"""The SMTP edge of the error model: every reply Postroom sends, with its RFC 3463 enhanced code.

Handlers return these constants instead of writing reply text inline, so the wording a sending
MTA sees is reviewed in one place. Replies that aiosmtpd writes itself (syntax errors, sequence
errors) carry no enhanced code; `enhance` adds the right one on the way out, because a server that
advertises ENHANCEDSTATUSCODES must put one on every reply but the greeting and the EHLO/HELO
answer (RFC 2034 §3). No reply ever carries exception text.
"""

from __future__ import annotations

import errno
import re

from postroom.errors import ConflictStatus, InsufficientStorage, UnreadableMessage
from postroom.intake.mail_auth import MailDeferred, MailRefused

# 2xx
OK = "250 2.0.0 OK"
SENDER_OK = "250 2.1.0 Sender OK"
RECIPIENT_OK = "250 2.1.5 Recipient OK"
STORED = "250 2.0.0 Message accepted for delivery"
RESET_OK = "250 2.0.0 Reset"
BYE = "221 2.0.0 Bye"
VRFY_REFUSED = "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery"
START_DATA = "354 End data with <CR><LF>.<CR><LF>"

# 4xx: transient, the sending MTA keeps the message and retries.
STORAGE_FAILED = "451 4.3.0 Temporary failure storing the message, try again later"
LOOKUP_FAILED = "451 4.3.0 Temporary failure looking up the recipient, try again later"
RATE_LIMITED_MESSAGES = "451 4.7.1 Too many messages from your address, try again later"
RATE_LIMITED_CONNECTIONS = "421 4.7.0 Too many connections from your address, try again later"
TOO_MANY_CONNECTIONS = "421 4.7.0 Too many open connections from your address, try again later"
SERVER_BUSY = "421 4.7.0 Too many open connections, try again later"
STORAGE_FULL = "452 4.3.1 Insufficient system storage, try again later"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
TIMEOUT = "421 4.4.2 Timeout, closing connection"
SHUTTING_DOWN = "421 4.3.2 Service shutting down, try again later"
TOO_MANY_UNKNOWN_RECIPIENTS = "421 4.7.0 Too many unknown recipients, closing connection"
AUTHENTICATION_DEFERRED = (
    "451 4.7.0 Temporary failure checking the sender's authentication (DMARC), try again later"
)

# 5xx: permanent, the sending MTA bounces the message to its author.
MESSAGE_STRUCTURE = "554 5.6.0 Message structure exceeds the limits (MIME nesting or parts)"
SIZE_EXCEEDED = "552 5.3.4 Message size exceeds the fixed maximum message size"
UNKNOWN_RECIPIENT = "550 5.1.1 Recipient address rejected: no such inbox"
QUEUE_DELETED = "550 5.2.1 Recipient address rejected: the queue of this inbox is being deleted"
RELAY_DENIED = "550 5.7.1 Relay access denied"
DMARC_REFUSED = "550 5.7.1 Message refused: the sender's domain fails DMARC authentication"
TLS_REQUIRED = "530 5.7.0 Must issue a STARTTLS command first"
NEED_RCPT = "503 5.5.1 Error: need RCPT command"
DATA_SYNTAX = "501 5.5.4 Syntax: DATA"
BAD_SIZE_PARAM = "501 5.5.4 Syntax: SIZE=<number of bytes>"

_HAS_ENHANCED = re.compile(r"^\d{3}[ -][245]\.\d{1,3}\.\d{1,3}(\s|$)")

# Replies aiosmtpd writes itself, by code, and the enhanced code each one means.
_STOCK_CODES = {
    "221": "2.0.0",
    "250": "2.0.0",
    "252": "2.5.0",
    "421": "4.3.0",
    "451": "4.3.0",
    "454": "4.7.0",
    "500": "5.5.2",
    "501": "5.5.4",
    "502": "5.5.1",
    "503": "5.5.1",
    "504": "5.5.4",
    "530": "5.7.0",
    "535": "5.7.8",
    "552": "5.3.4",
    "553": "5.1.3",
    "554": "5.7.0",
    "555": "5.5.4",
}


def enhance(reply: str) -> str:
    """`reply` with an enhanced status code inserted when it has none (single-line replies only).

    Multi-line replies (`250-...`, the EHLO answer), 220 greetings and 354 are passed unchanged.
    """
    if len(reply) < 4 or reply[3] != " " or _HAS_ENHANCED.match(reply):
        return reply
    code = reply[:3]
    enhanced = _STOCK_CODES.get(code)
    if enhanced is None:
        return reply
    text = reply[4:]
    if code == "250" and text != "OK":
        # A 250 with other text is the answer to HELO (its host name): RFC 2034 exempts it.
        return reply
    if text.startswith("Error: "):
        text = text[len("Error: ") :]
    return f"{code} {enhanced} {text}"


def for_error(error: BaseException) -> str:
    """The reply for an exception raised while storing a message: never its text."""
    if isinstance(error, ConflictStatus):
        # The queue left `active` between RCPT and the commit.
        return QUEUE_DELETED
    if isinstance(error, MailRefused):
        return DMARC_REFUSED
    if isinstance(error, MailDeferred):
        return AUTHENTICATION_DEFERRED
    if isinstance(error, UnreadableMessage):
        return MESSAGE_STRUCTURE
    if isinstance(error, InsufficientStorage) or (
        isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)
    ):
        return STORAGE_FULL
    return STORAGE_FAILED
