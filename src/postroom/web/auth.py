"""Authentication: the middleware that identifies every request, and the /auth endpoints.

Secure by default: every route needs a token unless its handler is marked `@public`; HTTP Basic
is accepted only on handlers marked `@basic_auth_allowed` (uploads, POST /documents, export).
Missing, bad or expired credentials → 401 (clients re-login on 401); a known user without the
right → 403, raised by the handlers.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from aiohttp import web

from postroom import accounts
from postroom.clock import utcnow
from postroom.db import tables as t
from postroom.errors import AuthenticationFailed, BadRequest
from postroom.permissions import Actor
from postroom.web.bodies import read_object
from postroom.web.keys import ACTOR, actor, services

H = TypeVar("H", bound=Callable[..., Awaitable[web.StreamResponse]])
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

routes = web.RouteTableDef()


def public(handler: H) -> H:
    handler.postroom_public = True  # type: ignore[attr-defined]
    return handler


def basic_auth_allowed(handler: H) -> H:
    handler.postroom_basic = True  # type: ignore[attr-defined]
    return handler


def _actor_from_row(row: Any) -> Actor:
    return Actor(
        user_id=row.id, organization_id=row.organization_id, username=row.username, group=row.role
    )


async def _token_actor(request: web.Request, key: str) -> Actor:
    svc = services(request)
    u, tok = t.users, t.tokens
    stmt = (
        sa.select(u.c.id, u.c.organization_id, u.c.username, u.c.role, tok.c.expires_at)
        .join(tok, tok.c.user_id == u.c.id)
        .where(tok.c.key_hash == accounts.token_digest(key), u.c.is_active.is_(True))
    )
    async with svc.db.reading() as conn:
        row = (await conn.execute(stmt)).first()
    if row is None:
        raise AuthenticationFailed("Invalid token.")
    if row.expires_at <= utcnow():
        raise AuthenticationFailed("Token has expired; log in again.")
    return _actor_from_row(row)


async def _basic_actor(request: web.Request, encoded: str) -> Actor:
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        username, password = decoded.split(":", 1)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise AuthenticationFailed("Malformed Basic credentials.") from None
    svc = services(request)
    u = t.users
    async with svc.db.reading() as conn:
        row = (
            await conn.execute(
                sa.select(
                    u.c.id, u.c.organization_id, u.c.username, u.c.role, u.c.password_hash
                ).where(u.c.username == username, u.c.is_active.is_(True))
            )
        ).first()
    if row is None:
        raise AuthenticationFailed("Invalid username or password.")
    if not await svc.basic_cache.verify(username, password, row.id, row.password_hash):
        raise AuthenticationFailed("Invalid username or password.")
    return _actor_from_row(row)


async def authenticate(request: web.Request, *, allow_basic: bool) -> Actor:
    header = request.headers.get("Authorization", "").strip()
    if not header:
        raise AuthenticationFailed("Authentication credentials were not provided.")
    scheme, _, credentials = header.partition(" ")
    scheme = scheme.lower()
    credentials = credentials.strip()
    if scheme in ("bearer", "token") and credentials:
        return await _token_actor(request, credentials)
    if scheme == "basic" and credentials:
        if not allow_basic:
            raise AuthenticationFailed(
                "Basic authentication is not accepted here; log in at /api/v1/auth/login "
                "and send the token."
            )
        return await _basic_actor(request, credentials)
    raise AuthenticationFailed("Unsupported Authorization header; use Bearer, Token or Basic.")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    route_handler = request.match_info.handler
    if getattr(route_handler, "postroom_public", False) or request.match_info.http_exception:
        return await handler(request)
    allow_basic = getattr(route_handler, "postroom_basic", False)
    request[ACTOR] = await authenticate(request, allow_basic=allow_basic)
    return await handler(request)


@routes.post("/api/v1/auth/login")
@public
async def login(request: web.Request) -> web.Response:
    svc = services(request)
    body = await read_object(request, allow_form=True)
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username:
        raise BadRequest("username and password are required.")
    lifetime = svc.settings.auth.token_lifetime_s
    requested = body.get("max_token_lifetime_s")
    if requested not in (None, ""):
        try:
            requested_s = int(requested)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise BadRequest(
                "max_token_lifetime_s: expected an integer number of seconds."
            ) from None
        if requested_s < 1:
            raise BadRequest("max_token_lifetime_s: must be a positive number of seconds.")
        lifetime = min(lifetime, requested_s)
    await svc.rate_limits.check_login(request, username)
    u = t.users
    async with svc.db.reading() as conn:
        row = (
            await conn.execute(
                sa.select(u.c.id, u.c.password_hash).where(
                    u.c.username == username, u.c.is_active.is_(True)
                )
            )
        ).first()
    ok = row is not None and await accounts.verify_password_async(row.password_hash, password)
    if not ok or row is None:
        svc.rate_limits.record_failed_login(request, username)
        raise AuthenticationFailed("Unable to log in with provided credentials.")
    key = accounts.new_token()
    now = utcnow()
    async with svc.db.transaction() as conn:
        await conn.execute(
            t.tokens.insert().values(
                key_hash=accounts.token_digest(key),
                user_id=row.id,
                created_at=now,
                expires_at=now + timedelta(seconds=lifetime),
            )
        )
        await conn.execute(u.update().where(u.c.id == row.id).values(last_login=now))
    domain = request.url.host if svc.settings.http.public_base_url == "" else svc.urls.base
    return web.json_response({"key": key, "domain": domain})


@routes.post("/api/v1/auth/logout")
async def logout(request: web.Request) -> web.Response:
    svc = services(request)
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() in ("bearer", "token"):
        async with svc.db.transaction() as conn:
            await conn.execute(
                t.tokens.delete().where(t.tokens.c.key_hash == accounts.token_digest(key.strip()))
            )
    return web.json_response({"detail": "Successfully logged out."})


@routes.get("/api/v1/auth/user")
async def current_user(request: web.Request) -> web.Response:
    from postroom.web.users import load_user_json

    svc = services(request)
    async with svc.db.reading() as conn:
        return web.json_response(await load_user_json(conn, svc.urls, actor(request).user_id))
