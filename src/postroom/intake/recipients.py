"""Recipient addresses → the inboxes mail is delivered to: SMTP's RCPT and `POST /emails/import`.

An address names an inbox (matched case-insensitively); the inbox feeds one queue. Mail is taken
only for an inbox whose queue is `active`; one whose queue is being deleted is told apart from an
unknown address (the SMTP replies differ).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.db import tables as t
from postroom.intake.accept import takes_documents


@dataclass(frozen=True)
class Target:
    """A recipient inbox the mail is delivered to (resolved at RCPT or from `recipient`)."""

    address: str
    inbox_id: int
    inbox_email: str
    queue_id: int
    organization_id: int
    dmarc_check_action: str = "accept"  # the inbox's: `accept` or `drop` (intake.mail_auth)


@dataclass(frozen=True)
class Lookup:
    """An address looked up: the target if its queue is active, else why not."""

    target: Target | None
    queue_status: str | None  # None: no inbox with that address


# Built once (bound parameters): RCPT runs it for every recipient.
_I, _Q = t.inboxes.c, t.queues.c
_LOOKUP = (
    sa.select(
        _I.id,
        _I.email,
        _I.organization_id,
        _I.dmarc_check_action,
        _Q.id.label("queue_id"),
        _Q.status,
    )
    .select_from(t.inboxes.join(t.queues, _Q.inbox_id == _I.id))
    .where(_I.email == sa.bindparam("address"))
    .order_by(_Q.id)
)


async def lookup(conn: AsyncConnection, address: str) -> Lookup:
    """The inbox (and its queue) an address names, matched case-insensitively."""
    rows = (await conn.execute(_LOOKUP, {"address": address.strip().lower()})).all()
    if not rows:
        return Lookup(None, None)
    row = next((r for r in rows if takes_documents(r.status)), rows[0])
    if not takes_documents(row.status):
        return Lookup(None, row.status)
    target = Target(
        address, row.id, row.email, row.queue_id, row.organization_id, row.dmarc_check_action
    )
    return Lookup(target, row.status)
