"""Users (`/users`, `/auth/user`, `/auth/password/change`): the people and service accounts of an
organization.

Everyone reads the users of their own organization; only admins create, change or delete them
(anyone may edit their own name, phone number, `ui_settings` and `metadata`). A user has one
role, given as a group URL. Passwords are write-only and must pass `domain.passwords`; setting
one (admins, via POST/PUT/PATCH `password`, or the user via `change_own_password`) revokes the
user's other tokens. DELETE is Rossum's soft deletion: the user is deactivated and marked
`deleted`. The last active admin of an organization can be neither demoted, deactivated nor
deleted (409).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Annotated, Any

import pydantic
import sqlalchemy as sa
from pydantic import StringConstraints
from sqlalchemy.ext.asyncio import AsyncConnection
from typing_extensions import TypedDict

from postroom import credentials
from postroom.clock import iso, utcnow
from postroom.db import tables as t
from postroom.domain import passwords
from postroom.domain.access import ADMIN, GROUP_IDS, GROUPS, ROLE_OF_GROUP, Actor
from postroom.domain.listing import Filter, Listing, comma_list, linked
from postroom.domain.relations import ids_by_owner, require_queues
from postroom.domain.resources import (
    Body,
    EditableResource,
    body_schema,
    check_organization,
    insert_returning_id,
    require_fields,
    sent_fields,
)
from postroom.errors import AccessForbidden, BadRequest, Conflict
from postroom.fields import JsonObject, Reference, Timestamp, Url
from postroom.runtime import Runtime
from postroom.urls import Urls, digits

u, qu = t.users, t.queue_users
ADMIN_GROUPS = tuple(name for name, role in GROUPS if role == ADMIN)
# What a user may change on their own record without being an admin.
SELF_EDITABLE_FIELDS = frozenset(
    {"first_name", "last_name", "phone_number", "ui_settings", "metadata"}
)
# The columns a body sets as they are sent (groups, password and queues are translated).
_PLAIN_FIELDS = (
    "username",
    "first_name",
    "last_name",
    "phone_number",
    "is_active",
    "ui_settings",
    "metadata",
)


class UserBody(Body):
    username: Annotated[str, StringConstraints(min_length=1, max_length=150)] = ""
    password: Annotated[str, StringConstraints(max_length=256)] = ""
    email: Annotated[str, StringConstraints(max_length=254)] = ""
    first_name: Annotated[str, StringConstraints(max_length=150)] = ""
    last_name: Annotated[str, StringConstraints(max_length=150)] = ""
    phone_number: Annotated[str, StringConstraints(max_length=40)] | None = None
    groups: list[Reference] = []
    queues: list[Reference] = []
    organization: Reference = ""
    is_active: bool = True
    ui_settings: JsonObject = {}
    metadata: JsonObject = {}
    # The column values `Users.prepare` made of the fields sent (password hashed), for the write.
    _columns: dict[str, Any] = pydantic.PrivateAttr(default_factory=dict)


class PasswordChangeBody(Body):
    model_config = Body.model_config | {
        "json_schema_extra": body_schema(
            top={"required": ["old_password", "new_password1", "new_password2"]}
        )
    }

    old_password: str = ""
    new_password1: str = ""
    new_password2: str = ""


class UserJson(TypedDict):
    id: int
    url: Url
    first_name: str
    last_name: str
    email: str
    phone_number: str | None
    date_joined: Timestamp
    username: str
    groups: list[Url]
    organization: Url
    queues: list[Url]
    is_active: bool
    last_login: Timestamp
    ui_settings: JsonObject
    metadata: JsonObject
    oidc_id: None
    auth_type: str
    deleted: bool


_GROUP_REFS = "|".join([*(str(i) for i in range(1, len(GROUPS) + 1)), *GROUP_IDS])
_GROUPS_SCHEMA = {"type": "string", "pattern": comma_list(f"(?:[^,]*/)?(?:{_GROUP_REFS})/*")}


def _group_names(raw: str) -> sa.ColumnElement[bool]:
    names = []
    for part in raw.split(","):
        part = part.strip().rstrip("/").rsplit("/", 1)[-1]
        if digits(part) and len(part) < 3 and 1 <= int(part) <= len(GROUPS):
            names.append(GROUPS[int(part) - 1][0])
        elif part in GROUP_IDS:
            names.append(part)
        elif part:
            raise BadRequest(f"groups: unknown group {part!r}.")
    return u.c.role.in_(names)


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


async def _columns(urls: Urls, who: Actor, sent: dict[str, Any]) -> dict[str, Any]:
    """Column values from the fields sent (the password hashed off the event loop)."""
    check_organization(urls, who, sent)
    email = sent.get("email", "")
    if email and ("@" not in email.strip("@") or any(c.isspace() for c in email)):
        raise BadRequest(f"email: {email!r} is not an email address.")
    values = {key: sent[key] for key in _PLAIN_FIELDS if key in sent}
    if "groups" in sent:
        values["role"] = _role_from_groups(urls, sent["groups"])
    if sent.get("password"):
        passwords.check(sent["password"], sent.get("username"))
        values["password_hash"] = await asyncio.to_thread(
            credentials.hash_password, sent["password"]
        )
    return values


async def _set_queues(
    conn: AsyncConnection, urls: Urls, who: Actor, user_id: int, refs: list[Any]
) -> None:
    queue_ids = await require_queues(conn, who, urls.ids_from(refs, "queues", "queues"), "queues")
    await conn.execute(qu.delete().where(qu.c.user_id == user_id))
    if queue_ids:
        await conn.execute(qu.insert(), [{"queue_id": q, "user_id": user_id} for q in queue_ids])


async def _ensure_username_free(conn: AsyncConnection, username: str, user_id: int = 0) -> None:
    taken = await conn.execute(sa.select(u.c.id).where(u.c.username == username, u.c.id != user_id))
    if taken.first() is not None:
        raise _username_taken(username)


def _username_taken(username: str | None) -> BadRequest:
    return BadRequest(f"username: a user named {username!r} already exists.")


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


async def _revoke_tokens(conn: AsyncConnection, who: Actor, user_id: int) -> None:
    """Revoke the user's tokens, except the one the caller uses when it is their own."""
    tok = t.tokens
    stmt = tok.delete().where(tok.c.user_id == user_id)
    if user_id == who.user_id and who.token_digest is not None:
        stmt = stmt.where(tok.c.key_hash != who.token_digest)
    await conn.execute(stmt)


class Users(EditableResource[UserJson, UserBody]):
    noun = "User"
    table = u
    body = UserBody
    required = ("username",)
    # Races on the username are answered as the 400 of a taken name.
    create_errors = ()
    update_errors = (Conflict,)
    delete_errors = (Conflict,)
    listing = Listing(
        filters=(
            Filter("id", u.c.id),
            Filter("organization", u.c.organization_id),
            Filter("username", u.c.username, "str"),
            Filter("first_name", u.c.first_name, "str"),
            Filter("last_name", u.c.last_name, "str"),
            Filter("email", u.c.email, "str"),
            Filter("is_active", u.c.is_active, "bool"),
            Filter("deleted", u.c.deleted, "bool"),
            Filter("groups", kind="custom", build=_group_names, schema=_GROUPS_SCHEMA),
            linked("queue", u.c.id, qu.c.user_id, qu.c.queue_id),
        ),
        ordering={
            name: u.c[name]
            for name in (
                "id",
                "username",
                "first_name",
                "last_name",
                "email",
                "last_login",
                "date_joined",
            )
        },
        default=(u.c.id,),
    )

    def check_writer(self, who: Actor) -> None:
        who.require_admin()

    def check_editor(self, who: Actor, object_id: int, body: UserBody) -> None:
        if who.is_admin:
            return
        if object_id != who.user_id:
            raise AccessForbidden("Only an admin may change other users.")
        forbidden = sorted(body.model_fields_set - {"email"} - SELF_EDITABLE_FIELDS)
        if forbidden:
            raise AccessForbidden(f"{forbidden[0]}: only an admin may change this field.")

    async def prepare(self, rt: Runtime, who: Actor, body: UserBody, object_id: int | None) -> None:
        sent = sent_fields(body)
        if object_id is not None:
            # Read-only after creation (reference: cannot be changed via the API).
            sent.pop("email", None)
        body._columns = await _columns(rt.urls, who, sent)

    async def render(
        self, conn: AsyncConnection, urls: Urls, who: Actor, rows: Sequence[Any]
    ) -> list[UserJson]:
        queues = await ids_by_owner(conn, qu.c.user_id, qu.c.queue_id, [row.id for row in rows])
        return [_render(urls, row, queues[row.id]) for row in rows]

    def lost_race(self, body: UserBody) -> BadRequest:
        # Two concurrent writes of one username: the unique index decides.
        return _username_taken(body.username if "username" in body.model_fields_set else None)

    async def insert(self, conn: AsyncConnection, rt: Runtime, who: Actor, body: UserBody) -> int:
        await _ensure_username_free(conn, body.username)
        user_id = await insert_returning_id(
            conn,
            u,
            organization_id=who.organization_id,
            email=body.email,
            date_joined=utcnow(),
            **{"role": "viewer", **body._columns},
        )
        await _set_queues(conn, rt.urls, who, user_id, body.queues)
        return user_id

    async def change(
        self, conn: AsyncConnection, rt: Runtime, who: Actor, row: Any, body: UserBody
    ) -> None:
        values = body._columns
        if row.deleted and values.get("is_active"):
            raise Conflict("A deleted user cannot be reactivated.")
        if _loses_admin(row, values):
            await _ensure_admin_remains(conn, who, row.id)
        if "username" in values:
            await _ensure_username_free(conn, values["username"], row.id)
        if values:
            await conn.execute(u.update().where(u.c.id == row.id).values(**values))
        if "password_hash" in values or values.get("is_active") is False:
            await _revoke_tokens(conn, who, row.id)
        if "queues" in body.model_fields_set:
            await _set_queues(conn, rt.urls, who, row.id, body.queues)

    async def remove(self, conn: AsyncConnection, rt: Runtime, who: Actor, row: Any) -> None:
        """Soft deletion: deactivated, marked deleted, its tokens revoked."""
        if _loses_admin(row, {"is_active": False}):
            await _ensure_admin_remains(conn, who, row.id)
        await conn.execute(u.update().where(u.c.id == row.id).values(is_active=False, deleted=True))
        await conn.execute(t.tokens.delete().where(t.tokens.c.user_id == row.id))


def _render(urls: Urls, row: Any, queue_ids: list[int]) -> UserJson:
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


USERS = Users()


async def change_own_password(
    rt: Runtime, who: Actor, body: PasswordChangeBody, source: str
) -> UserJson:
    """The caller changes their own password; every other token of theirs is revoked. The old
    password is checked like a login: the attempt is reserved first (429 when `source` or the
    username has none left) and given back when it was right."""
    require_fields(body, ("old_password", "new_password1", "new_password2"))
    if body.new_password1 != body.new_password2:
        raise BadRequest("new_password2: the two new passwords differ.")
    passwords.check(body.new_password1, who.username)
    async with rt.db.reading() as conn:
        current = (
            await conn.execute(sa.select(u.c.password_hash).where(u.c.id == who.user_id))
        ).scalar_one()
    attempt = rt.rate_limits.reserve_login(who.username, source)
    if not await credentials.verify_password_async(current, body.old_password, source):
        raise BadRequest("old_password: the current password is not correct.")
    attempt.succeeded()
    new_hash = await asyncio.to_thread(credentials.hash_password, body.new_password1)
    async with rt.db.transaction() as conn:
        await conn.execute(u.update().where(u.c.id == who.user_id).values(password_hash=new_hash))
        await _revoke_tokens(conn, who, who.user_id)
        return await USERS.one(conn, rt.urls, who, who.user_id)
