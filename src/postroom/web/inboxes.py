"""REST endpoints for inboxes (`/inboxes`): the email addresses that feed queues.

An inbox's address is `<email_prefix>-<6 random hex>@<smtp.domain>`, made by
`organization.create_inbox` (the prefix defaults to a slug of the name). Changing the prefix
makes a new address; a client may also set `email` itself, within the mail domain. `queues` is
the (at most one) queue whose `inbox` points here: sending it moves that queue to this inbox.
Admins and managers see and write every inbox; annotators and viewers see only the inboxes of
their queues. DELETE detaches the queue (which then takes no more mail) and answers 204.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.clock import iso, utcnow
from postroom.db import tables as t
from postroom.errors import BadRequest, NotFound
from postroom.organization import (
    EMAIL_PREFIX_RE,
    create_inbox,
    email_prefix_from,
    new_inbox_address,
)
from postroom.permissions import Actor, visible_queues_clause
from postroom.services import Services
from postroom.web.bodies import path_id, read_object
from postroom.web.keys import actor, services
from postroom.web.listing import Filter, apply_filters, apply_ordering, envelope, paginate
from postroom.web.related import require_queues, visible_queue_ids_by
from postroom.web.resource_models import InboxBody, parse_body
from postroom.web.urls import Urls

routes = web.RouteTableDef()

i = t.inboxes
_LOCAL_PART_RE = re.compile(r"^[a-z0-9][a-z0-9._+-]{0,63}$")


def render_inbox(urls: Urls, row: Any, queue_ids: list[int]) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "url": urls.to("inboxes", row.id),
        "queues": urls.many("queues", queue_ids),
        "email": row.email,
        "email_prefix": row.email_prefix,
        "bounce_email_to": row.bounce_email_to,
        "bounce_unprocessable_attachments": row.bounce_unprocessable_attachments,
        "bounce_postponed_annotations": row.bounce_postponed_annotations,
        "bounce_deleted_annotations": row.bounce_deleted_annotations,
        "bounce_email_with_no_attachments": row.bounce_email_with_no_attachments,
        "metadata": row.metadata or {},
        "filters": {"allowed_senders": [], "denied_senders": [], **(row.filters or {})},
        "dmarc_check_action": row.dmarc_check_action,
        "modified_by": urls.of("users", row.modified_by_id),
        "modified_at": iso(row.modified_at),
    }


def _visible(who: Actor) -> sa.ColumnElement[bool]:
    if who.sees_all_queues:
        return sa.true()
    q = t.queues
    return i.c.id.in_(sa.select(q.c.inbox_id).where(visible_queues_clause(who, q.c.id)))


async def _render_rows(
    conn: AsyncConnection, urls: Urls, who: Actor, rows: list[Any]
) -> list[dict[str, Any]]:
    queues = await visible_queue_ids_by(conn, who, t.queues.c.inbox_id, [r.id for r in rows])
    return [render_inbox(urls, row, queues[row.id]) for row in rows]


def _feeding_queues(raw: str) -> sa.ColumnElement[bool]:
    ids = Filter("queue", t.queues.c.id).clause(raw)
    return i.c.id.in_(sa.select(t.queues.c.inbox_id).where(ids))


FILTERS = (
    Filter("id", i.c.id),
    Filter("name", i.c.name, "str"),
    Filter("email", i.c.email, "custom", build=lambda raw: i.c.email == raw.strip().lower()),
    Filter("email_prefix", i.c.email_prefix, "str"),
    Filter("bounce_email_to", i.c.bounce_email_to, "str"),
    Filter("bounce_unprocessable_attachments", i.c.bounce_unprocessable_attachments, "bool"),
    Filter("bounce_postponed_annotations", i.c.bounce_postponed_annotations, "bool"),
    Filter("bounce_deleted_annotations", i.c.bounce_deleted_annotations, "bool"),
    Filter("queue", kind="custom", build=_feeding_queues),
)
ORDERING = {name: i.c[name] for name in ("id", "name", "email", "email_prefix", "bounce_email_to")}


@routes.get("/api/v1/inboxes")
async def list_inboxes(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    stmt = sa.select(i).where(i.c.organization_id == who.organization_id, _visible(who))
    stmt = apply_filters(stmt, request.query, FILTERS)
    stmt = apply_ordering(stmt, request.query.get("ordering"), ORDERING, [i.c.id])
    async with svc.db.reading() as conn:
        rows, pagination = await paginate(conn, request, svc.urls.base, stmt)
        results = await _render_rows(conn, svc.urls, who, rows)
    return web.json_response(envelope(pagination, results))


async def _inbox_row(conn: AsyncConnection, who: Actor, inbox_id: int) -> Any:
    stmt = sa.select(i).where(
        i.c.id == inbox_id, i.c.organization_id == who.organization_id, _visible(who)
    )
    row = (await conn.execute(stmt)).first()
    if row is None:
        raise NotFound(f"Inbox {inbox_id} not found.")
    return row


async def _inbox_json(conn: AsyncConnection, urls: Urls, who: Actor, inbox_id: int) -> Any:
    row = await _inbox_row(conn, who, inbox_id)
    return (await _render_rows(conn, urls, who, [row]))[0]


@routes.get("/api/v1/inboxes/{id}")
async def retrieve_inbox(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    async with svc.db.reading() as conn:
        return web.json_response(await _inbox_json(conn, svc.urls, who, path_id(request)))


def _columns(svc: Services, sent: dict[str, Any]) -> dict[str, Any]:
    """Column values from the plain fields sent (address and queues are handled apart)."""
    values = {k: v for k, v in sent.items() if k not in ("email", "email_prefix", "queues")}
    if "filters" in sent:
        values["filters"] = sent["filters"].model_dump(exclude_unset=True)
    bounce_to = sent.get("bounce_email_to")
    if bounce_to and "@" not in bounce_to:
        raise BadRequest(f"bounce_email_to: {bounce_to!r} is not an email address.")
    if "email_prefix" in sent and not EMAIL_PREFIX_RE.match(sent["email_prefix"]):
        raise BadRequest(
            "email_prefix: at most 57 characters of lower-case letters a-z, digits 0-9 and "
            f"dashes, got {sent['email_prefix']!r}."
        )
    if sent.get("email"):
        _check_address(sent["email"], svc.settings.smtp.domain)
    return values


def _check_address(address: str, domain: str) -> None:
    local, _, at_domain = address.strip().lower().rpartition("@")
    if at_domain != domain.lower() or not _LOCAL_PART_RE.match(local):
        raise BadRequest(
            f"email: must be an address of the mail domain (<name>@{domain}), got {address!r}."
        )


async def _address_taken(conn: AsyncConnection, address: str, inbox_id: int) -> None:
    taken = await conn.execute(sa.select(i.c.id).where(i.c.email == address, i.c.id != inbox_id))
    if taken.first() is not None:
        raise BadRequest(f"email: {address!r} is already the address of another inbox.")


async def _attach_queues(
    conn: AsyncConnection, urls: Urls, who: Actor, inbox_id: int, refs: list[Any]
) -> None:
    queue_ids = await require_queues(conn, who, urls.ids_from(refs, "queues", "queues"), "queues")
    if len(queue_ids) > 1:
        raise BadRequest("queues: an inbox feeds at most one queue.")
    q = t.queues
    await conn.execute(
        q.update().where(q.c.inbox_id == inbox_id, q.c.id.not_in(queue_ids)).values(inbox_id=None)
    )
    if queue_ids:
        await conn.execute(q.update().where(q.c.id.in_(queue_ids)).values(inbox_id=inbox_id))


@routes.post("/api/v1/inboxes")
async def create_inbox_endpoint(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    who.require_manager()
    _body, sent = parse_body(InboxBody, await read_object(request), required=("name",))
    values = _columns(svc, sent)
    prefix = sent.get("email_prefix") or email_prefix_from(sent["name"])
    values.pop("name")
    domain = svc.settings.smtp.domain
    try:
        async with svc.db.transaction() as conn:
            inbox_id = await create_inbox(
                conn,
                who.organization_id,
                sent["name"],
                prefix,
                domain,
                modified_by_id=who.user_id,
                modified_at=utcnow(),
                **values,
            )
            if sent.get("email"):
                await _address_taken(conn, sent["email"].lower(), inbox_id)
                await conn.execute(
                    i.update().where(i.c.id == inbox_id).values(email=sent["email"].lower())
                )
            await _attach_queues(conn, svc.urls, who, inbox_id, sent.get("queues", []))
            body = await _inbox_json(conn, svc.urls, who, inbox_id)
    except sa.exc.IntegrityError:
        # Only a concurrent request taking the same address gets here.
        raise BadRequest("email: that address was just taken by another inbox.") from None
    return web.json_response(body, status=201)


async def _new_address(
    conn: AsyncConnection, sent: dict[str, Any], row: Any, domain: str
) -> dict[str, Any]:
    if sent.get("email") and sent["email"].lower() != row.email:
        address = sent["email"].lower()
        await _address_taken(conn, address, row.id)
        return {
            "email": address,
            **({"email_prefix": sent["email_prefix"]} if "email_prefix" in sent else {}),
        }
    if "email_prefix" in sent and sent["email_prefix"] != row.email_prefix:
        for _ in range(20):
            address = new_inbox_address(sent["email_prefix"], domain)
            taken = await conn.execute(sa.select(i.c.id).where(i.c.email == address))
            if taken.first() is None:
                return {"email": address, "email_prefix": sent["email_prefix"]}
        raise BadRequest("email_prefix: no free address found for this prefix; choose another.")
    return {}


async def _update_inbox(request: web.Request, *, partial: bool) -> web.Response:
    svc, who = services(request), actor(request)
    inbox_id = path_id(request)
    async with svc.db.reading() as conn:
        await _inbox_row(conn, who, inbox_id)
    who.require_manager()
    _body, sent = parse_body(
        InboxBody, await read_object(request), required=("name",), partial=partial
    )
    values = _columns(svc, sent)
    try:
        async with svc.db.transaction() as conn:
            row = await _inbox_row(conn, who, inbox_id)
            values.update(await _new_address(conn, sent, row, svc.settings.smtp.domain))
            await conn.execute(
                i.update()
                .where(i.c.id == inbox_id)
                .values(**values, modified_by_id=who.user_id, modified_at=utcnow())
            )
            if "queues" in sent:
                await _attach_queues(conn, svc.urls, who, inbox_id, sent["queues"])
            body = await _inbox_json(conn, svc.urls, who, inbox_id)
    except sa.exc.IntegrityError:
        raise BadRequest("email: that address was just taken by another inbox.") from None
    return web.json_response(body)


@routes.patch("/api/v1/inboxes/{id}")
async def patch_inbox(request: web.Request) -> web.Response:
    return await _update_inbox(request, partial=True)


@routes.put("/api/v1/inboxes/{id}")
async def put_inbox(request: web.Request) -> web.Response:
    return await _update_inbox(request, partial=False)


@routes.delete("/api/v1/inboxes/{id}")
async def delete_inbox(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    inbox_id = path_id(request)
    async with svc.db.reading() as conn:
        await _inbox_row(conn, who, inbox_id)
    who.require_manager()
    async with svc.db.transaction() as conn:
        await _inbox_row(conn, who, inbox_id)
        q = t.queues
        await conn.execute(q.update().where(q.c.inbox_id == inbox_id).values(inbox_id=None))
        await conn.execute(
            t.emails.update().where(t.emails.c.inbox_id == inbox_id).values(inbox_id=None)
        )
        await conn.execute(i.delete().where(i.c.id == inbox_id))
    return web.Response(status=204)
