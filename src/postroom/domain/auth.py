"""Who is calling: API tokens and Basic credentials → the acting user; logging in and out.

Tokens are random keys of which only the sha256 is stored (`credentials.token_digest`); they
expire. Basic credentials are checked against the argon2 hash once and then remembered for a
while (`credentials.BasicCredentialCache`), so an integration posting thousands of files does not
pay a password hash per request. Every password check first reserves a login attempt
(`ratelimit.RateLimits.reserve_login`, 429 when none is left) and an unknown username is checked
against a dummy hash, so timing does not tell which usernames exist. Any failure is
`AuthenticationFailed` (401): clients log in again on 401.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from postroom import credentials
from postroom.clock import utcnow
from postroom.db import tables as t
from postroom.domain.access import Actor
from postroom.domain.bootstrap import forget_credentials
from postroom.errors import AuthenticationFailed
from postroom.runtime import Runtime

u, tok = t.users, t.tokens

_BY_TOKEN = (
    sa.select(u.c.id, u.c.organization_id, u.c.username, u.c.role, tok.c.expires_at)
    .join(tok, tok.c.user_id == u.c.id)
    .where(tok.c.key_hash == sa.bindparam("digest"), u.c.is_active.is_(True))
)
_BY_USERNAME = sa.select(
    u.c.id, u.c.organization_id, u.c.username, u.c.role, u.c.password_hash
).where(u.c.username == sa.bindparam("username"), u.c.is_active.is_(True))


def _actor_from_row(row: Any, token_digest: str | None = None) -> Actor:
    return Actor(
        user_id=row.id,
        organization_id=row.organization_id,
        username=row.username,
        group=row.role,
        token_digest=token_digest,
    )


async def token_actor(rt: Runtime, key: str) -> Actor:
    digest = credentials.token_digest(key)
    async with rt.db.reading() as conn:
        row = (await conn.execute(_BY_TOKEN, {"digest": digest})).first()
    if row is None:
        raise AuthenticationFailed("Invalid token.")
    if row.expires_at <= utcnow():
        raise AuthenticationFailed("Token has expired; log in again.")
    return _actor_from_row(row, digest)


async def basic_actor(rt: Runtime, username: str, password: str, source: str) -> Actor:
    """The user of a Basic credential sent from client address `source`. A credential verified
    lately is answered from the cache; a new verification costs a login attempt (`ratelimit`),
    reserved before the password hash runs and given back when it was right."""
    async with rt.db.reading() as conn:
        row = (await conn.execute(_BY_USERNAME, {"username": username})).first()
    if row is None:
        rt.rate_limits.reserve_login(username, source)
        await credentials.verify_password_async("", password, source)  # as slow as a real one
        raise AuthenticationFailed("Invalid username or password.")
    # Requests carrying the same credential while it is being verified share that verification
    # (and its one reserved attempt).
    if not await rt.basic_cache.verify(
        username,
        password,
        row.id,
        row.password_hash,
        source,
        reserve=lambda: rt.rate_limits.reserve_login(username, source),
    ):
        raise AuthenticationFailed("Invalid username or password.")
    return _actor_from_row(row)


async def log_in(
    rt: Runtime, username: str, password: str, lifetime_s: int, source: str
) -> str | None:
    """A new token for valid credentials; None when they are not. The attempt is reserved
    before the password is checked (429 once `source` or `username` has none left)."""
    async with rt.db.reading() as conn:
        row = (await conn.execute(_BY_USERNAME, {"username": username})).first()
    attempt = rt.rate_limits.reserve_login(username, source)
    if row is None:
        await credentials.verify_password_async("", password, source)  # as slow as a real one
        return None
    if not await credentials.verify_password_async(row.password_hash, password, source):
        return None
    attempt.succeeded()
    key = credentials.new_token()
    now = utcnow()
    async with rt.db.transaction() as conn:
        await conn.execute(
            tok.insert().values(
                key_hash=credentials.token_digest(key),
                user_id=row.id,
                created_at=now,
                expires_at=now + timedelta(seconds=lifetime_s),
            )
        )
        await conn.execute(u.update().where(u.c.id == row.id).values(last_login=now))
    forget_credentials(rt.settings.data_dir, row.username)  # the first-start file, if any
    return key


async def log_out(rt: Runtime, key: str) -> None:
    async with rt.db.transaction() as conn:
        await conn.execute(tok.delete().where(tok.c.key_hash == credentials.token_digest(key)))
