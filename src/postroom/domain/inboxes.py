"""Inboxes (`/inboxes`): the email addresses that feed queues.

An inbox's address is `<email_prefix>-<6 random hex>@<smtp.domain>`, made by
`create_inbox` (the prefix defaults to a slug of the name). Changing the prefix
makes a new address; a client may also set `email` itself, within the mail domain. `queues` is
the (at most one) queue whose `inbox` points here. A queue has one inbox too: naming a queue that
another inbox feeds is a 409 naming that inbox (taking the queue over silently would turn the
other inbox's published address into a 550); detach it there first.
Admins and managers see and write every inbox; annotators and viewers see only the inboxes of
their queues. DELETE detaches the queue (which then takes no more mail).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import pydantic
import sqlalchemy as sa
from pydantic import StringConstraints
from sqlalchemy.ext.asyncio import AsyncConnection
from typing_extensions import TypedDict

from postroom.clock import iso, utcnow
from postroom.db import tables as t
from postroom.domain.access import Actor, visible_queues_clause
from postroom.domain.listing import Filter, Listing, linked
from postroom.domain.relations import require_queues, visible_queue_ids_by
from postroom.domain.resources import (
    Body,
    EditableResource,
    body_schema,
    insert_returning_id,
    sent_fields,
)
from postroom.errors import BadRequest, ConflictStatus
from postroom.fields import JsonObject, Name, OptionalUrl, Reference, Timestamp, Url
from postroom.runtime import Runtime
from postroom.urls import Urls

i, q = t.inboxes, t.queues

EMAIL_PREFIX_RE = re.compile(r"^[a-z0-9-]{1,57}$")


def email_prefix_from(name: str) -> str:
    """A valid inbox prefix derived from a display name (lower-case a-z, 0-9 and dashes)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return (slug or "inbox")[:57].strip("-") or "inbox"


def new_inbox_address(prefix: str, domain: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}@{domain}".lower()


async def create_inbox(
    conn: AsyncConnection, organization_id: int, name: str, prefix: str, domain: str, **fields: Any
) -> int:
    """The one way an inbox is made (bootstrap, the CLI, the API, queue copies)."""
    # Six random hex digits rarely collide; try again when they do.
    for _ in range(20):
        address = new_inbox_address(prefix, domain)
        taken = await conn.execute(sa.select(t.inboxes.c.id).where(t.inboxes.c.email == address))
        if taken.first() is None:
            return await insert_returning_id(
                conn,
                t.inboxes,
                organization_id=organization_id,
                name=name,
                email=address,
                email_prefix=prefix,
                **fields,
            )
    raise RuntimeError("could not find a free inbox address")


_LOCAL_PART_RE = re.compile(r"^[a-z0-9][a-z0-9._+-]{0,63}$")
Address = Annotated[str, StringConstraints(max_length=254)]


class InboxFilters(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow", strict=True)

    allowed_senders: list[Address] = []
    denied_senders: list[Address] = []
    document_rejection_conditions: JsonObject = {}


class InboxBody(Body):
    model_config = Body.model_config | {
        "json_schema_extra": body_schema(
            email_prefix={"type": "string", "pattern": EMAIL_PREFIX_RE.pattern},
            bounce_email_to={
                "anyOf": [
                    {"type": "string", "maxLength": 254, "pattern": "^$|@"},
                    {"type": "null"},
                ]
            },
        )
    }

    name: Name = ""
    email_prefix: str = ""
    email: Address = ""
    queues: list[Reference] = []
    bounce_email_to: Address | None = None
    bounce_unprocessable_attachments: bool = False
    bounce_postponed_annotations: bool = False
    bounce_deleted_annotations: bool = False
    bounce_email_with_no_attachments: bool = True
    filters: InboxFilters = InboxFilters()
    dmarc_check_action: Literal["accept", "drop"] = "accept"
    metadata: JsonObject = {}


class InboxJson(TypedDict):
    id: int
    name: str
    url: Url
    queues: list[Url]
    email: str
    email_prefix: str
    bounce_email_to: str | None
    bounce_unprocessable_attachments: bool
    bounce_postponed_annotations: bool
    bounce_deleted_annotations: bool
    bounce_email_with_no_attachments: bool
    metadata: JsonObject
    filters: JsonObject
    dmarc_check_action: str
    modified_by: OptionalUrl
    modified_at: Timestamp


def _columns(domain: str, sent: dict[str, Any]) -> dict[str, Any]:
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
        _check_address(sent["email"], domain)
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


async def _new_address(
    conn: AsyncConnection, sent: dict[str, Any], row: Any, domain: str
) -> dict[str, Any]:
    """The address columns a change of `email` or `email_prefix` makes (none when unchanged)."""
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


async def _attach_queues(
    conn: AsyncConnection, urls: Urls, who: Actor, inbox_id: int, refs: list[Any]
) -> None:
    queue_ids = await require_queues(conn, who, urls.ids_from(refs, "queues", "queues"), "queues")
    if len(queue_ids) > 1:
        raise BadRequest("queues: an inbox feeds at most one queue.")
    await conn.execute(
        q.update().where(q.c.inbox_id == inbox_id, q.c.id.not_in(queue_ids)).values(inbox_id=None)
    )
    if not queue_ids:
        return
    # Only a queue without an inbox (or with this one) is taken: checked by the UPDATE itself,
    # so two inboxes racing for one queue cannot both get it.
    free = sa.or_(q.c.inbox_id.is_(None), q.c.inbox_id == inbox_id)
    taken = await conn.execute(
        q.update().where(q.c.id.in_(queue_ids), free).values(inbox_id=inbox_id)
    )
    if taken.rowcount == len(queue_ids):
        return
    fed = await conn.execute(sa.select(q.c.id, q.c.inbox_id).where(q.c.id.in_(queue_ids), ~free))
    queue_id, other = fed.one()
    raise ConflictStatus(
        f"queues: queue {queue_id} already has inbox {other} ({urls.to('inboxes', other)}); "
        "a queue has one inbox: detach it from that inbox first."
    )


class Inboxes(EditableResource[InboxJson, InboxBody]):
    noun = "Inbox"
    table = i
    body = InboxBody
    # A queue another inbox feeds: 409. Races on an address or a queue are answered as the 400
    # of a taken address.
    create_errors = (ConflictStatus,)
    update_errors = (ConflictStatus,)
    listing = Listing(
        filters=(
            Filter("id", i.c.id),
            Filter("name", i.c.name, "str"),
            Filter(
                "email", i.c.email, "custom", build=lambda raw: i.c.email == raw.strip().lower()
            ),
            Filter("email_prefix", i.c.email_prefix, "str"),
            Filter("bounce_email_to", i.c.bounce_email_to, "str"),
            Filter(
                "bounce_unprocessable_attachments", i.c.bounce_unprocessable_attachments, "bool"
            ),
            Filter("bounce_postponed_annotations", i.c.bounce_postponed_annotations, "bool"),
            Filter("bounce_deleted_annotations", i.c.bounce_deleted_annotations, "bool"),
            linked("queue", i.c.id, q.c.inbox_id, q.c.id),
        ),
        ordering={
            name: i.c[name] for name in ("id", "name", "email", "email_prefix", "bounce_email_to")
        },
        default=(i.c.id,),
    )

    def visible(self, who: Actor) -> sa.ColumnElement[bool]:
        """Their organization's inboxes; for annotators and viewers those of their queues."""
        mine = super().visible(who)
        if who.sees_all_queues:
            return mine
        fed = sa.select(q.c.inbox_id).where(visible_queues_clause(who, q.c.id))
        return sa.and_(mine, i.c.id.in_(fed))

    async def render(
        self, conn: AsyncConnection, urls: Urls, who: Actor, rows: Sequence[Any]
    ) -> list[InboxJson]:
        queues = await visible_queue_ids_by(conn, who, q.c.inbox_id, [r.id for r in rows])
        return [
            {
                "id": row.id,
                "name": row.name,
                "url": urls.to("inboxes", row.id),
                "queues": urls.many("queues", queues[row.id]),
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
            for row in rows
        ]

    def lost_race(self, body: InboxBody) -> BadRequest:
        # Only a concurrent request taking the same address (or queue) gets here.
        return BadRequest("email: that address was just taken by another inbox.")

    async def insert(self, conn: AsyncConnection, rt: Runtime, who: Actor, body: InboxBody) -> int:
        sent = sent_fields(body)
        domain = rt.settings.smtp.domain
        values = _columns(domain, sent)
        prefix = sent.get("email_prefix") or email_prefix_from(body.name)
        values.pop("name")
        inbox_id = await create_inbox(
            conn,
            who.organization_id,
            body.name,
            prefix,
            domain,
            modified_by_id=who.user_id,
            modified_at=utcnow(),
            **values,
        )
        if body.email:
            await _address_taken(conn, body.email.lower(), inbox_id)
            await conn.execute(
                i.update().where(i.c.id == inbox_id).values(email=body.email.lower())
            )
        await _attach_queues(conn, rt.urls, who, inbox_id, body.queues)
        return inbox_id

    async def change(
        self, conn: AsyncConnection, rt: Runtime, who: Actor, row: Any, body: InboxBody
    ) -> None:
        sent = sent_fields(body)
        domain = rt.settings.smtp.domain
        values = _columns(domain, sent)
        values.update(await _new_address(conn, sent, row, domain))
        await conn.execute(
            i.update()
            .where(i.c.id == row.id)
            .values(**values, modified_by_id=who.user_id, modified_at=utcnow())
        )
        if "queues" in sent:
            await _attach_queues(conn, rt.urls, who, row.id, body.queues)

    async def remove(self, conn: AsyncConnection, rt: Runtime, who: Actor, row: Any) -> None:
        """The queue it fed and the emails it received stay, without it."""
        await conn.execute(q.update().where(q.c.inbox_id == row.id).values(inbox_id=None))
        await conn.execute(
            t.emails.update().where(t.emails.c.inbox_id == row.id).values(inbox_id=None)
        )
        await super().remove(conn, rt, who, row)


INBOXES = Inboxes()
