"""Idempotency keys: the first answer to a create sent with an `Idempotency-Key` header, kept for
24 hours so that a client retrying the same request (after a timeout, a lost answer) gets that
answer again instead of a second object.

A key belongs to one user. Its life: `claim` reserves it for the request that brings it first
(an in-progress row, held for `LEASE` and renewed by `renew` while the request runs); `remember`
stores that request's digest and successful answer; `release` gives the key up when the request
failed (its answer is not kept: the client may retry with the same key). A request arriving
while the key is held by another is refused (409): waiting could take as long as an upload.
A holder that dies stops renewing; once its lease has run out the key may be claimed again.
Keys older than `KEY_LIFETIME` are deleted by a background duty (`purge_expired`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from postroom.clock import utcnow
from postroom.db import tables as t
from postroom.db.engine import Database
from postroom.errors import BadRequest, ConcurrentChange, ConflictStatus

KEY_LIFETIME = timedelta(hours=24)
LEASE = timedelta(minutes=2)
MAX_KEY_LENGTH = 255
_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces

k = t.idempotency_keys.c


@dataclass(frozen=True)
class Answered:
    """The first request's digest and answer."""

    request_sha256: str
    status: int
    body: str


def check_key(raw: str) -> str:
    """The key of an `Idempotency-Key` header; 400 unless 1 to 255 printable ASCII characters."""
    key = raw.strip()
    if not _KEY_RE.match(key):
        raise BadRequest(
            f"Idempotency-Key: 1 to {MAX_KEY_LENGTH} printable ASCII characters without spaces."
        )
    return key


def _in_progress() -> ConflictStatus:
    return ConflictStatus(
        "Idempotency-Key: a request with this key is still being processed; retry later."
    )


def _mine(user_id: int, key: str) -> sa.ColumnElement[bool]:
    return sa.and_(k.user_id == user_id, k.key == key)


async def claim(db: Database, user_id: int, key: str) -> Answered | None:
    """None: the key is reserved for this request. An `Answered` when a request with this key was
    answered within the last 24 hours; 409 while another request holds it."""
    now = utcnow()
    held = {"lease_until": now + LEASE}
    fresh = {
        **held,
        "request_sha256": None,
        "response_status": None,
        "response_body": None,
        "created_at": now,
        "expires_at": now + KEY_LIFETIME,
    }
    try:
        async with db.transaction() as conn:
            row = (
                await conn.execute(
                    sa.select(t.idempotency_keys).where(_mine(user_id, key)).with_for_update()
                )
            ).first()
            if row is None:
                await conn.execute(
                    t.idempotency_keys.insert().values(user_id=user_id, key=key, **fresh)
                )
                return None
            if row.expires_at <= now:
                await conn.execute(
                    t.idempotency_keys.update().where(_mine(user_id, key)).values(**fresh)
                )
                return None
            if row.response_status is not None:
                return Answered(row.request_sha256, row.response_status, row.response_body or "")
            if row.lease_until > now:
                raise _in_progress()
            # The request that held it is gone (its process died): this one takes over.
            await conn.execute(
                t.idempotency_keys.update().where(_mine(user_id, key)).values(**held)
            )
            return None
    except ConcurrentChange:  # another request inserted the same key first
        raise _in_progress() from None


async def renew(db: Database, user_id: int, key: str) -> None:
    """Extend the hold of a request still running."""
    async with db.transaction() as conn:
        await conn.execute(
            t.idempotency_keys.update()
            .where(_mine(user_id, key), k.response_status.is_(None))
            .values(lease_until=utcnow() + LEASE)
        )


async def remember(
    db: Database, user_id: int, key: str, request_sha256: str, status: int, body: str
) -> None:
    """Keep the answer of the request holding the key."""
    async with db.transaction() as conn:
        await conn.execute(
            t.idempotency_keys.update()
            .where(_mine(user_id, key), k.response_status.is_(None))
            .values(request_sha256=request_sha256, response_status=status, response_body=body)
        )


async def release(db: Database, user_id: int, key: str) -> None:
    """Give the key up: the request holding it failed, and its answer is not kept."""
    async with db.transaction() as conn:
        await conn.execute(
            t.idempotency_keys.delete().where(_mine(user_id, key), k.response_status.is_(None))
        )


async def purge_expired(db: Database, now: datetime) -> int:
    """Delete the keys older than `KEY_LIFETIME` (a background duty)."""
    async with db.transaction() as conn:
        result = await conn.execute(t.idempotency_keys.delete().where(k.expires_at <= now))
    return int(result.rowcount)
