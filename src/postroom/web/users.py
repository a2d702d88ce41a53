"""REST endpoints for users (`/users`, `/auth/password/change`), and the user JSON shared with `/auth/user`.

Everyone reads the users of their own organization; only admins create, change or delete them
(anyone may edit their own name, phone number, `ui_settings` and `metadata`). A user has one
role, given as a group URL. Passwords are write-only; setting one (admins, via POST/PUT/PATCH
`password`, or the user via `/auth/password/change`) revokes the user's other tokens. DELETE is
Rossum's soft deletion: the user is deactivated and marked `deleted`. The last active admin of
an organization can be neither demoted, deactivated nor deleted (409).
"""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom import accounts, password_policy
from postroom.clock import iso, utcnow
from postroom.db import tables as t
from postroom.errors import AccessForbidden, BadRequest, Conflict, NotFound
from postroom.permissions import ADMIN, GROUP_IDS, GROUPS, ROLE_OF_GROUP, Actor
from postroom.web.bodies import path_id, read_object
from postroom.web.keys import actor, services
from postroom.web.listing import Filter, apply_filters, apply_ordering, envelope, paginate
from postroom.web.related import require_queues
from postroom.web.resource_models import (
    SELF_EDITABLE_USER_FIELDS,
    PasswordChangeBody,
    UserBody,
    parse_body,
)
from postroom.web.urls import Urls

routes = web.RouteTableDef()

u = t.users
ADMIN_GROUPS = tuple(name for name, role in GROUPS if role == ADMIN)


def render_user(urls: Urls, row: Any, queue_ids: list[int]) -> dict[str, Any]:
    return {
        "id": row.id,
        "url": urls.to("users", row.id),
        "first_name": row.first_name,
        "last_name": row.last_name,
        "email": row.email,
        "phone_number": row.phone_number,
        "date_joined": iso(row.date_joined),
        "username": row.username,
        "groups": [urls.to("groups", GROUP_IDS.get(row.role, GROUP_IDS["viewer"]))],
        "organization": urls.to("organizations", row.organization_id),
        "queues": urls.many("queues", queue_ids),
        "is_active": row.is_active,
        "last_login": iso(row.last_login),
        "ui_settings": row.ui_settings or {},
        "metadata": row.metadata or {},
        "oidc_id": None,
        "auth_type": "password",
        "deleted": row.deleted,
    }


async def queue_ids_of_users(conn: AsyncConnection, user_ids: list[int]) -> dict[int, list[int]]:
    qu = t.queue_users
    rows = await conn.execute(
        sa.select(qu.c.user_id, qu.c.queue_id)
        .where(qu.c.user_id.in_(user_ids))
        .order_by(qu.c.queue_id)
    )
    found: dict[int, list[int]] = {uid: [] for uid in user_ids}
    for user_id, queue_id in rows:
        found[user_id].append(queue_id)
    return found


async def load_user_json(conn: AsyncConnection, urls: Urls, user_id: int) -> dict[str, Any]:
    row = (await conn.execute(sa.select(u).where(u.c.id == user_id))).first()
    if row is None:
        raise NotFound()
    queue_ids = (await queue_ids_of_users(conn, [user_id]))[user_id]
    return render_user(urls, row, queue_ids)


def _group_names(raw: str) -> sa.ColumnElement[bool]:
    names = []
    for part in raw.split(","):
        part = part.strip().rstrip("/").rsplit("/", 1)[-1]
        if part.isdigit() and 1 <= int(part) <= len(GROUPS):
            names.append(GROUPS[int(part) - 1][0])
        elif part in GROUP_IDS:
            names.append(part)
        elif part:
            raise BadRequest(f"groups: unknown group {part!r}.")
    return u.c.role.in_(names)


def _in_queues(raw: str) -> sa.ColumnElement[bool]:
    qu = t.queue_users
    ids = Filter("queue", qu.c.queue_id).clause(raw)
    return u.c.id.in_(sa.select(qu.c.user_id).where(ids))


FILTERS = (
    Filter("id", u.c.id),
    Filter("organization", u.c.organization_id),
    Filter("username", u.c.username, "str"),
    Filter("first_name", u.c.first_name, "str"),
    Filter("last_name", u.c.last_name, "str"),
    Filter("email", u.c.email, "str"),
    Filter("is_active", u.c.is_active, "bool"),
    Filter("deleted", u.c.deleted, "bool"),
    Filter("groups", kind="custom", build=_group_names),
    Filter("queue", kind="custom", build=_in_queues),
)
ORDERING = {
    name: u.c[name]
    for name in ("id", "username", "first_name", "last_name", "email", "last_login", "date_joined")
}


@routes.get("/api/v1/users")
async def list_users(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    stmt = sa.select(u).where(u.c.organization_id == who.organization_id)
    stmt = apply_filters(stmt, request.query, FILTERS)
    stmt = apply_ordering(stmt, request.query.get("ordering"), ORDERING, [u.c.id])
    async with svc.db.reading() as conn:
        rows, pagination = await paginate(conn, request, svc.urls.base, stmt)
        queues = await queue_ids_of_users(conn, [row.id for row in rows])
    results = [render_user(svc.urls, row, queues[row.id]) for row in rows]
    return web.json_response(envelope(pagination, results))


async def _user_row(conn: AsyncConnection, who: Actor, user_id: int) -> Any:
    row = (
        await conn.execute(
            sa.select(u).where(u.c.id == user_id, u.c.organization_id == who.organization_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"User {user_id} not found.")
    return row


@routes.get("/api/v1/users/{id}")
async def retrieve_user(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    async with svc.db.reading() as conn:
        row = await _user_row(conn, who, path_id(request))
        return web.json_response(await load_user_json(conn, svc.urls, row.id))


def _role_from_groups(urls: Urls, refs: list[Any]) -> str:
    """The one role a list of group URLs names (`approver` may accompany another role)."""
    names = []
    for group_id in urls.ids_from(refs, "groups", "groups"):
        if not 1 <= group_id <= len(GROUPS):
            raise BadRequest(f"groups: group {group_id} does not exist.")
        names.append(GROUPS[group_id - 1][0])
    roles = list(dict.fromkeys(names))
    if len(roles) > 1 and "approver" in roles:
        roles.remove("approver")
    if len(roles) > 1:
        raise BadRequest("groups: a user has one role (optionally with approver).")
    # No group at all: the least privileged role, as Rossum gives such a user no rights.
    return roles[0] if roles else "viewer"


def _check_organization(urls: Urls, who: Actor, sent: dict[str, Any]) -> None:
    if "organization" in sent:
        org_id = urls.id_from(sent["organization"], "organizations", "organization")
        if org_id != who.organization_id:
            raise BadRequest(f"organization: organization {org_id} is not yours.")


async def _user_values(request: web.Request, who: Actor, sent: dict[str, Any]) -> dict[str, Any]:
    """Column values from the fields sent (password hashed off the event loop)."""
    svc = services(request)
    _check_organization(svc.urls, who, sent)
    email = sent.get("email", "")
    if email and ("@" not in email.strip("@") or any(c.isspace() for c in email)):
        raise BadRequest(f"email: {email!r} is not an email address.")
    values = {
        key: sent[key]
        for key in (
            "username",
            "first_name",
            "last_name",
            "phone_number",
            "is_active",
            "ui_settings",
            "metadata",
        )
        if key in sent
    }
    if "groups" in sent:
        values["role"] = _role_from_groups(svc.urls, sent["groups"])
    if sent.get("password"):
        password_policy.check(sent["password"], sent.get("username"))
        values["password_hash"] = await asyncio.to_thread(accounts.hash_password, sent["password"])
    return values


async def _set_queues(
    conn: AsyncConnection, urls: Urls, who: Actor, user_id: int, refs: list[Any]
) -> None:
    queue_ids = await require_queues(conn, who, urls.ids_from(refs, "queues", "queues"), "queues")
    qu = t.queue_users
    await conn.execute(qu.delete().where(qu.c.user_id == user_id))
    if queue_ids:
        await conn.execute(qu.insert(), [{"queue_id": q, "user_id": user_id} for q in queue_ids])


async def _ensure_username_free(conn: AsyncConnection, username: str, user_id: int = 0) -> None:
    taken = await conn.execute(sa.select(u.c.id).where(u.c.username == username, u.c.id != user_id))
    if taken.first() is not None:
        raise BadRequest(f"username: a user named {username!r} already exists.")


@routes.post("/api/v1/users")
async def create_user(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    who.require_admin()
    _body, sent = parse_body(UserBody, await read_object(request), required=("username",))
    values = await _user_values(request, who, sent)
    values.setdefault("role", "viewer")
    try:
        async with svc.db.transaction() as conn:
            await _ensure_username_free(conn, sent["username"])
            result = await conn.execute(
                u.insert()
                .values(
                    organization_id=who.organization_id,
                    email=sent.get("email", ""),
                    date_joined=utcnow(),
                    **values,
                )
                .returning(u.c.id)
            )
            user_id = result.scalar_one()
            await _set_queues(conn, svc.urls, who, user_id, sent.get("queues", []))
            body = await load_user_json(conn, svc.urls, user_id)
    except sa.exc.IntegrityError:
        # Two concurrent creations of one username: the unique index decides.
        raise BadRequest(f"username: a user named {sent['username']!r} already exists.") from None
    return web.json_response(body, status=201)


def _check_may_edit(who: Actor, user_id: int, sent: dict[str, Any]) -> None:
    if who.is_admin:
        return
    if user_id != who.user_id:
        raise AccessForbidden("Only an admin may change other users.")
    forbidden = sorted(set(sent) - SELF_EDITABLE_USER_FIELDS)
    if forbidden:
        raise AccessForbidden(f"{forbidden[0]}: only an admin may change this field.")


async def _ensure_admin_remains(conn: AsyncConnection, who: Actor, user_id: int) -> None:
    # Two admins demoting each other at once on PostgreSQL must not both pass the count: lock
    # the organization row so such changes run one after the other (SQLite serialises writes).
    o = t.organizations
    await conn.execute(sa.select(o.c.id).where(o.c.id == who.organization_id).with_for_update())
    others = await conn.execute(
        sa.select(sa.func.count())
        .select_from(u)
        .where(
            u.c.organization_id == who.organization_id,
            u.c.id != user_id,
            u.c.role.in_(ADMIN_GROUPS),
            u.c.is_active.is_(True),
            u.c.deleted.is_(False),
        )
    )
    if others.scalar_one() == 0:
        raise Conflict("This is the last active admin of the organization; add another first.")


def _loses_admin(row: Any, values: dict[str, Any]) -> bool:
    was_admin = ROLE_OF_GROUP.get(row.role) == ADMIN and row.is_active
    stays_admin = ROLE_OF_GROUP.get(values.get("role", row.role)) == ADMIN and values.get(
        "is_active", row.is_active
    )
    return bool(was_admin and not stays_admin)


async def _update_user(request: web.Request, *, partial: bool) -> web.Response:
    svc, who = services(request), actor(request)
    user_id = path_id(request)
    _body, sent = parse_body(
        UserBody, await read_object(request), required=("username",), partial=partial
    )
    sent.pop("email", None)  # read-only after creation (reference: cannot change via the API)
    async with svc.db.reading() as conn:
        await _user_row(conn, who, user_id)
    _check_may_edit(who, user_id, sent)
    values = await _user_values(request, who, sent)
    try:
        async with svc.db.transaction() as conn:
            row = await _user_row(conn, who, user_id)
            if row.deleted and values.get("is_active"):
                raise Conflict("A deleted user cannot be reactivated.")
            if _loses_admin(row, values):
                await _ensure_admin_remains(conn, who, user_id)
            if "username" in values:
                await _ensure_username_free(conn, values["username"], user_id)
            if values:
                await conn.execute(u.update().where(u.c.id == user_id).values(**values))
            if "password_hash" in values or values.get("is_active") is False:
                await _revoke_tokens(conn, user_id, keep=_own_token(request, who, user_id))
            if "queues" in sent:
                await _set_queues(conn, svc.urls, who, user_id, sent["queues"])
            body = await load_user_json(conn, svc.urls, user_id)
    except sa.exc.IntegrityError:
        raise BadRequest(
            f"username: a user named {sent.get('username')!r} already exists."
        ) from None
    return web.json_response(body)


def _own_token(request: web.Request, who: Actor, user_id: int) -> str | None:
    """The digest of the caller's token when they change their own password (it stays valid)."""
    if user_id != who.user_id:
        return None
    return accounts.token_digest(request.headers.get("Authorization", "").partition(" ")[2].strip())


async def _revoke_tokens(conn: AsyncConnection, user_id: int, keep: str | None) -> None:
    tok = t.tokens
    stmt = tok.delete().where(tok.c.user_id == user_id)
    if keep is not None:
        stmt = stmt.where(tok.c.key_hash != keep)
    await conn.execute(stmt)


@routes.patch("/api/v1/users/{id}")
async def patch_user(request: web.Request) -> web.Response:
    return await _update_user(request, partial=True)


@routes.put("/api/v1/users/{id}")
async def put_user(request: web.Request) -> web.Response:
    return await _update_user(request, partial=False)


@routes.delete("/api/v1/users/{id}")
async def delete_user(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    user_id = path_id(request)
    async with svc.db.reading() as conn:
        await _user_row(conn, who, user_id)
    who.require_admin()
    async with svc.db.transaction() as conn:
        row = await _user_row(conn, who, user_id)
        if _loses_admin(row, {"is_active": False}):
            await _ensure_admin_remains(conn, who, user_id)
        await conn.execute(
            u.update().where(u.c.id == user_id).values(is_active=False, deleted=True)
        )
        await conn.execute(t.tokens.delete().where(t.tokens.c.user_id == user_id))
    return web.Response(status=204)


@routes.post("/api/v1/auth/password/change")
async def change_own_password(request: web.Request) -> web.Response:
    """The caller changes their own password; every other token of theirs is revoked."""
    svc, who = services(request), actor(request)
    body, _sent = parse_body(
        PasswordChangeBody,
        await read_object(request, allow_form=True),
        required=("old_password", "new_password1", "new_password2"),
    )
    if body.new_password1 != body.new_password2:
        raise BadRequest("new_password2: the two new passwords differ.")
    password_policy.check(body.new_password1, who.username)
    async with svc.db.reading() as conn:
        current = (
            await conn.execute(sa.select(u.c.password_hash).where(u.c.id == who.user_id))
        ).scalar_one()
    if not await accounts.verify_password_async(current, body.old_password):
        raise BadRequest("old_password: the current password is not correct.")
    new_hash = await asyncio.to_thread(accounts.hash_password, body.new_password1)
    async with svc.db.transaction() as conn:
        await conn.execute(u.update().where(u.c.id == who.user_id).values(password_hash=new_hash))
        await _revoke_tokens(conn, who.user_id, keep=_own_token(request, who, who.user_id))
        body_json = await load_user_json(conn, svc.urls, who.user_id)
    return web.json_response(body_json)
