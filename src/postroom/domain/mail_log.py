"""The mail log: one record per SMTP transaction — who sent what to which inbox, and what they
were answered (accepted, or refused and why), with the e-mails and documents it created.

The SMTP edge writes an entry once the transaction's reply is known (`record`, one insert through
the group commit); the operator console pages through them (`page_of`). Admins and managers see
every entry; other users the entries of the queues they see (refused mail that named no queue
only the former).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.db import tables as t
from postroom.db.commits import group_commit
from postroom.db.engine import Database
from postroom.domain.access import Actor, visible_queues_clause
from postroom.domain.listing import Filter, Listing, Page, PageRequest, fetch_page

m = t.mail_log.c
_TEXT_LIMIT = 500


@dataclass
class MailLogEntry:
    """One SMTP transaction as the edge saw it."""

    started_at: datetime
    finished_at: datetime
    client_address: str
    helo: str
    mail_from: str
    reply: str  # the final reply line, "250 2.0.0 Message accepted for delivery"
    recipients: list[dict[str, str]] = field(default_factory=list)
    size: int | None = None
    queue_id: int | None = None
    email_ids: list[int] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)

    def values(self) -> dict[str, Any]:
        code, _, text = self.reply.partition(" ")
        return {
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "client_address": self.client_address[:64],
            "helo": self.helo[:255],
            "mail_from": self.mail_from[:512],
            "recipients": self.recipients,
            "size": self.size,
            "reply_code": int(code) if code.isdigit() else None,
            "reply_text": (text if code.isdigit() else self.reply)[:_TEXT_LIMIT],
            "queue_id": self.queue_id,
            "email_ids": self.email_ids,
            "files": self.files,
        }


async def record(db: Database, entry: MailLogEntry) -> None:
    """Write one entry (one insert, grouped with other commits)."""

    async def write(conn: AsyncConnection) -> None:
        await conn.execute(t.mail_log.insert().values(**entry.values()))

    await group_commit(db).run(write)


def _outcome(raw: str) -> sa.ColumnElement[bool]:
    """`outcome=accepted|refused|temporary`: 2xx, 5xx, 4xx final replies."""
    ranges = {"accepted": (200, 300), "temporary": (400, 500), "refused": (500, 600)}
    low, high = ranges.get(raw.strip(), (0, 0))
    return sa.and_(m.reply_code >= low, m.reply_code < high)


LISTING = Listing(
    filters=(
        Filter("queue", m.queue_id),
        Filter("reply_code", m.reply_code),
        Filter("started_after", m.started_at, "after"),
        Filter("started_before", m.started_at, "before"),
        Filter("outcome", kind="custom", build=_outcome),
        Filter("sender", m.mail_from, "icontains"),
        Filter("client", m.client_address, "icontains"),
    ),
    ordering={"started_at": m.started_at, "id": m.id},
    default=(m.id.desc(),),
)


def _visible(who: Actor) -> sa.ColumnElement[bool]:
    if who.sees_all_queues:
        return sa.true()
    return sa.and_(m.queue_id.is_not(None), visible_queues_clause(who, m.queue_id))


async def page_of(
    db: Database, who: Actor, query: Mapping[str, str], page: PageRequest
) -> Page[dict[str, Any]]:
    """Entries, newest first, each with the documents of the e-mails it created."""
    stmt = LISTING.apply(sa.select(t.mail_log).where(_visible(who)), query)
    async with db.reading() as conn:
        rows, total = await fetch_page(conn, stmt, page)
        email_ids = sorted({int(i) for row in rows for i in (row.email_ids or [])})
        documents = await _documents_of(conn, email_ids)
    items = []
    for row in rows:
        item = dict(row._mapping)
        item["documents"] = [doc for e in row.email_ids or [] for doc in documents.get(int(e), [])]
        items.append(item)
    return Page(items, total, page)


async def _documents_of(
    conn: AsyncConnection, email_ids: list[int]
) -> dict[int, list[dict[str, Any]]]:
    d = t.documents.c
    found: dict[int, list[dict[str, Any]]] = {}
    if not email_ids:
        return found
    stmt = (
        sa.select(d.id, d.email_id, d.original_file_name)
        .where(d.email_id.in_(email_ids))
        .order_by(d.id)
    )
    for row in await conn.execute(stmt):
        found.setdefault(row.email_id, []).append({"id": row.id, "name": row.original_file_name})
    return found
