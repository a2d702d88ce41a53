"""`/auth`: log in (JSON or form body) for a token, log out, who am I, and change my password."""

from __future__ import annotations

from typing import Any

from postroom.api.middleware.auth import presented_token
from postroom.api.middleware.limits import client_address
from postroom.api.routing import Call, Routes
from postroom.domain import auth, users
from postroom.domain.resources import Body, body_schema
from postroom.domain.users import USERS, PasswordChangeBody, UserJson
from postroom.errors import AuthenticationFailed, BadRequest, NotFound, RateLimited

routes = Routes()


class LoginBody(Body):
    """Credentials; `max_token_lifetime_s` may shorten the token's life (never lengthen it)."""

    model_config = Body.model_config | {
        "strict": False,
        "json_schema_extra": body_schema(
            top={"required": ["username", "password"]},
            username={"type": "string", "minLength": 1},
            password={"type": "string"},
            max_token_lifetime_s={
                "anyOf": [
                    {"type": "integer", "minimum": 1},
                    {"type": "string", "pattern": r"^\s*0*[1-9][0-9]{0,17}\s*$"},
                    {"type": "null"},
                ]
            },
        ),
    }

    username: str | None = None
    password: str | None = None
    max_token_lifetime_s: int | str | None = None


def _lifetime(call: Call, requested: Any) -> int:
    lifetime = call.rt.settings.auth.token_lifetime_s
    if requested in (None, ""):
        return lifetime
    try:
        requested_s = int(requested)
    except (TypeError, ValueError):
        raise BadRequest("max_token_lifetime_s: expected an integer number of seconds.") from None
    if requested_s < 1:
        raise BadRequest("max_token_lifetime_s: must be a positive number of seconds.")
    return min(lifetime, requested_s)


@routes.post(
    "/auth/login",
    auth="public",
    body=LoginBody,
    form=True,
    response=dict[str, str],
    errors=(AuthenticationFailed, RateLimited),
)
async def login(call: Call) -> dict[str, str]:
    """Log in: a token (`key`) to send as `Authorization: Bearer <key>` or `Token <key>`."""
    body: LoginBody = call.body
    if not body.username or body.password is None:
        raise BadRequest("username and password are required.")
    username, password = body.username, body.password
    lifetime = _lifetime(call, body.max_token_lifetime_s)
    address = client_address(call.request)
    key = await auth.log_in(call.rt, username, password, lifetime, source=address)
    if key is None:
        raise AuthenticationFailed("Unable to log in with provided credentials.")
    settings = call.rt.settings
    own_host = call.request.url.host or ""
    domain = own_host if settings.http.public_base_url == "" else call.rt.urls.base
    return {"key": key, "domain": domain}


@routes.post("/auth/logout", response=dict[str, str])
async def logout(call: Call) -> dict[str, str]:
    """Revoke the token this request carries."""
    key = presented_token(call.request)
    if key is not None:
        await auth.log_out(call.rt, key)
    return {"detail": "Successfully logged out."}


@routes.get("/auth/user", response=UserJson, errors=(NotFound,))
async def current_user(call: Call) -> UserJson:
    """The user the request acts as."""
    return await USERS.retrieve(call.rt, call.actor, call.actor.user_id)


@routes.post(
    "/auth/password/change",
    body=PasswordChangeBody,
    form=True,
    response=UserJson,
    errors=(NotFound, RateLimited),
)
async def change_own_password(call: Call) -> UserJson:
    """The caller changes their own password; every other token of theirs is revoked. A wrong
    old password counts as a failed login (429 once too many)."""
    return await users.change_own_password(
        call.rt, call.actor, call.body, source=client_address(call.request)
    )
