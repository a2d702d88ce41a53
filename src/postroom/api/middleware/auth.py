"""Authentication of every request: the middleware that identifies the caller.

Secure by default: every endpoint needs a token unless it is declared `auth="public"`; HTTP
Basic is accepted only where it is declared `auth="basic"` (uploads, POST /documents, export).
Missing, bad or expired credentials → 401 (clients re-login on 401); a known user without the
right → 403, raised by the domain. Routes the API did not declare belong to the operator console
mounted on the same application, which checks its own session cookie.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable

from aiohttp import web

from postroom.api.keys import ACTOR, runtime
from postroom.api.middleware.limits import client_address
from postroom.api.routing import endpoint_of
from postroom.domain import auth
from postroom.domain.access import Actor
from postroom.errors import AuthenticationFailed

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def basic_credentials(encoded: str) -> tuple[str, str]:
    """(username, password) of a Basic `Authorization` value; 401 when it cannot be read."""
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        username, password = decoded.split(":", 1)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise AuthenticationFailed("Malformed Basic credentials.") from None
    return username, password


def presented_token(request: web.Request) -> str | None:
    """The key of a `Bearer`/`Token` Authorization header, if that is what the request carries."""
    scheme, _, key = request.headers.get("Authorization", "").strip().partition(" ")
    return key.strip() if scheme.lower() in ("bearer", "token") else None


async def authenticate(request: web.Request, *, allow_basic: bool) -> Actor:
    header = request.headers.get("Authorization", "").strip()
    if not header:
        raise AuthenticationFailed("Authentication credentials were not provided.")
    scheme, _, credentials = header.partition(" ")
    scheme = scheme.lower()
    credentials = credentials.strip()
    if scheme in ("bearer", "token") and credentials:
        return await auth.token_actor(runtime(request), credentials)
    if scheme == "basic" and credentials:
        if not allow_basic:
            raise AuthenticationFailed(
                "Basic authentication is not accepted here; log in at /api/v1/auth/login "
                "and send the token."
            )
        username, password = basic_credentials(credentials)
        return await auth.basic_actor(
            runtime(request), username, password, source=client_address(request)
        )
    raise AuthenticationFailed("Unsupported Authorization header; use Bearer, Token or Basic.")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.match_info.http_exception is not None:  # no such route: 404/405 as it is
        return await handler(request)
    endpoint = endpoint_of(request.match_info.handler)
    if endpoint is None:  # the console's pages: authenticated by the console itself
        return await handler(request)
    auth_kind = endpoint.auth
    if auth_kind == "public":
        return await handler(request)
    request[ACTOR] = await authenticate(request, allow_basic=auth_kind == "basic")
    return await handler(request)
