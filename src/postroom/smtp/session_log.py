"""One log line per SMTP session (instead of aiosmtpd's dozen): who connected, what they said
they were, what they sent, and how it ended.

    INFO postroom.smtp smtp session client=203.0.113.9 helo=mx.example.org tls=false
        sender=5d41402abc4b recipients=1 messages=1 bytes=48213 reply=250 duration_ms=212.4

`reply` is the final reply to the last DATA, else the last refusal (4xx/5xx), else the last
reply sent (the greeting or a HELO answer for a session that only looked). `recipients` counts
the distinct accepted recipients, `messages` the messages accepted, `bytes` the message bytes
received. Mail addresses follow `log.mail_addresses`: `hash` (the default: the first 12 hex of
the sha256 of the lower-cased address, enough to match the sessions of one sender), `debug`
(left out, and logged on a DEBUG line of their own) or `plain`.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

from postroom import logs

log = logging.getLogger("postroom.smtp")


def address_hash(address: str) -> str:
    return hashlib.sha256(address.strip().lower().encode("utf-8")).hexdigest()[:12]


class SessionLog:
    """What one connection did, gathered as it goes and logged once when it ends."""

    def __init__(self, client: str, addresses: str) -> None:
        self.client = client
        self.addresses = addresses
        self.started = time.perf_counter()
        self.tls = False
        self.senders: list[str] = []
        self.recipients: list[str] = []
        self.messages = 0
        self.bytes = 0
        self.data_reply: str | None = None
        self.refusal: str | None = None
        self.last_reply: str | None = None
        self.done = False

    def replied(self, reply: str, mail_from: str | None, rcpt_tos: list[str]) -> None:
        """A reply went out; the envelope as it stood then (sender and accepted recipients)."""
        code = reply[:3]
        if code not in ("221", "354"):  # the goodbye and "go ahead" say nothing of the outcome
            self.last_reply = code
        if code[:1] in ("4", "5"):
            self.refusal = code
        if mail_from is not None and mail_from not in self.senders:
            self.senders.append(mail_from)
        self.recipients.extend(r for r in rcpt_tos if r not in self.recipients)

    def received(self, size: int, reply: str) -> None:
        """A DATA transfer ended (stored or refused) with `reply`."""
        self.bytes += size
        self.data_reply = reply[:3]
        if reply.startswith("250"):
            self.messages += 1

    def _shown(self, addresses: list[str]) -> str | None:
        if not addresses or self.addresses == "debug":
            return None
        if self.addresses == "plain":
            return ",".join(a or "<>" for a in addresses)
        return ",".join(address_hash(a) for a in addresses)

    def emit(self, helo: str | None) -> None:
        """Log the session's line (once, however often the connection reports its end)."""
        if self.done:
            return
        self.done = True
        fields: dict[str, Any] = {
            "client": self.client,
            "helo": helo or None,
            "tls": self.tls,
            "sender": self._shown(self.senders),
            "recipients": len(self.recipients),
            "messages": self.messages,
            "bytes": self.bytes,
            "reply": self.data_reply or self.refusal or self.last_reply,
            "duration_ms": round((time.perf_counter() - self.started) * 1000, 1),
        }
        logs.event(log, "smtp session", **fields)
        if self.addresses == "debug" and (self.senders or self.recipients):
            logs.event(
                log,
                "smtp session addresses",
                level=logging.DEBUG,
                client=self.client,
                sender=",".join(a or "<>" for a in self.senders) or None,
                recipients=",".join(self.recipients) or None,
            )
