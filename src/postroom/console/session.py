"""Console sessions: who is logged in, and the CSRF check of every form.

A console session is an API token (`domain.auth.log_in`, the same users, passwords and roles as
the REST API) kept in the `postroom_session` cookie: `HttpOnly` (no script reads it),
`SameSite=Strict` (no other site's page sends it), `Secure` when the public base URL is https.
Logging out revokes the token.

CSRF: every form carries a token the server checks on POST (a missing or wrong one is 403).
Logged in, it is an HMAC of the session key — stable for the session, unguessable without the
cookie. The login form, before any session, uses a double-submit cookie (`postroom_login`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web

from postroom.domain import auth
from postroom.domain.access import Actor
from postroom.errors import AccessForbidden, AuthenticationFailed
from postroom.runtime import Runtime

SESSION_COOKIE = "postroom_session"
LOGIN_COOKIE = "postroom_login"
CSRF_FIELD = "csrf_token"

RUNTIME: web.AppKey[Runtime] = web.AppKey("console_runtime")
ACTOR: web.RequestKey[Actor] = web.RequestKey("console_actor")
_LOGIN_TOKEN: web.RequestKey[str] = web.RequestKey("console_login_token")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def runtime(request: web.Request) -> Runtime:
    return request.app[RUNTIME]


def session_key(request: web.Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE) or None


async def current_actor(request: web.Request) -> Actor | None:
    """The logged-in user, or None (no cookie, an expired or revoked session)."""
    key = session_key(request)
    if key is None:
        return None
    try:
        return await auth.token_actor(runtime(request), key)
    except AuthenticationFailed:
        return None


def csrf_token(request: web.Request) -> str:
    """The token this request's forms carry."""
    key = session_key(request)
    if key is None:
        return request.get(_LOGIN_TOKEN) or request.cookies.get(LOGIN_COOKIE) or ""
    return hmac.new(key.encode(), b"postroom-console-csrf", hashlib.sha256).hexdigest()


def login_token(request: web.Request) -> str:
    """The double-submit token of the login form (kept from the browser's cookie if it has one;
    the caller sets it as the `postroom_login` cookie of its answer)."""
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
    request[_LOGIN_TOKEN] = token
    return token


async def require_csrf(request: web.Request) -> dict[str, str]:
    """The posted form, or 403 when its CSRF token is missing or wrong."""
    form = await request.post()
    sent = form.get(CSRF_FIELD)
    expected = csrf_token(request)
    if not isinstance(sent, str) or not expected or not hmac.compare_digest(sent, expected):
        raise AccessForbidden("Missing or invalid CSRF token; reload the page and try again.")
    return {k: v for k, v in form.items() if isinstance(v, str)}


def set_cookie(
    request: web.Request,
    response: web.StreamResponse,
    name: str,
    value: str,
    max_age: int | None = None,
) -> None:
    """A console cookie: HttpOnly, SameSite=Strict, Secure behind an https base URL."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=runtime(request).urls.base.startswith("https://"),
    )


async def log_in(request: web.Request, username: str, password: str) -> str | None:
    """A session token for valid credentials; the attempt counts against the same per-address and
    per-user login limits as the API's login (reserved before the password is checked)."""
    rt = runtime(request)
    lifetime = min(rt.settings.auth.token_lifetime_s, rt.settings.auth.console_session_s)
    return await auth.log_in(rt, username, password, lifetime, request.remote or "unknown")


def start_session(request: web.Request, response: web.StreamResponse, key: str) -> None:
    lifetime = runtime(request).settings.auth.console_session_s
    set_cookie(request, response, SESSION_COOKIE, key, max_age=lifetime)
    response.del_cookie(LOGIN_COOKIE, path="/")


async def end_session(request: web.Request, response: web.StreamResponse) -> None:
    key = session_key(request)
    if key is not None:
        await auth.log_out(runtime(request), key)
    response.del_cookie(SESSION_COOKIE, path="/")
