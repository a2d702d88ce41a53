"""Hooks (`/hooks`): the extensions (webhooks and functions) that queues point at, and their rules.

Postroom stores hooks so that `queue.hooks` names real objects and clients that manage hooks
work; it does not deliver events to them (yet). Hooks carry endpoints and secrets, so only
admins and managers read or write them (others get 403). `queues` is the queue_hooks relation
seen from the hook. Events are checked against the reference's list (`EVENT_ACTIONS`); a whole
event (`annotation_status`) is stored as its actions, because clients read `events` as a list
of `event.action` values. PATCH merges the keys of `config` into the stored one (so a secret
survives a URL change); PUT replaces it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import pydantic
import sqlalchemy as sa
from pydantic import StringConstraints
from sqlalchemy.ext.asyncio import AsyncConnection
from typing_extensions import TypedDict

from postroom.clock import iso, utcnow
from postroom.db import tables as t
from postroom.domain.access import Actor
from postroom.domain.hook_events import (
    CONFIG_SHAPES,
    EVENT_PATTERN,
    EVENTS_SCHEMA,
    HOOK_TYPES,
    check_config,
    normalize_events,
)
from postroom.domain.listing import Filter, Listing, linked
from postroom.domain.relations import ids_by_owner, require_queues
from postroom.domain.resources import (
    Body,
    EditableResource,
    body_schema,
    insert_returning_id,
    sent_fields,
)
from postroom.errors import AccessForbidden, BadRequest
from postroom.fields import (
    OPTIONAL_REFERENCE_SCHEMA,
    JsonObject,
    Name,
    OptionalUrl,
    Reference,
    Timestamp,
    Url,
)
from postroom.runtime import Runtime
from postroom.urls import Urls

h, qh = t.hooks, t.queue_hooks

# The columns a body sets as they are sent.
_PLAIN_FIELDS = (
    "name",
    "type",
    "active",
    "settings",
    "sideload",
    "metadata",
    "description",
    "test",
)


class HookBody(Body):
    model_config = Body.model_config | {
        "json_schema_extra": body_schema(
            top={"anyOf": CONFIG_SHAPES},
            type={"type": "string", "enum": ["webhook", "function"]},
            token_owner=OPTIONAL_REFERENCE_SCHEMA,
            events={
                "type": "array",
                "items": {"type": "string", "pattern": f"^(?:{EVENT_PATTERN})$"},
            },
        )
    }

    name: Name = ""
    type: str = "webhook"
    queues: list[Reference] = []
    run_after: list[Reference] = []
    events: list[str] = []
    config: JsonObject = {}
    active: bool = True
    settings: JsonObject = {}
    sideload: list[str] = []
    metadata: JsonObject = {}
    description: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    test: JsonObject = {}
    token_owner: Reference | None = None
    token_lifetime_s: Annotated[int, pydantic.Field(ge=0, le=7200)] | None = None


class HookJson(TypedDict):
    id: int
    type: str
    url: Url
    name: str
    metadata: JsonObject
    queues: list[Url]
    run_after: list[Url]
    sideload: list[str]
    active: bool
    events: list[str]
    config: JsonObject
    test: JsonObject
    extension_source: str
    settings: JsonObject
    settings_schema: None
    description: str
    guide: None
    read_more_url: None
    extension_image_url: None
    hook_template: None
    token_owner: OptionalUrl
    token_lifetime_s: int | None
    created_by: OptionalUrl
    created_at: Timestamp
    modified_by: OptionalUrl
    modified_at: Timestamp


def _listening_to(raw: str) -> sa.ColumnElement[bool]:
    # Events are checked names ([a-z_.]), so matching the quoted name in the JSON text is exact
    # and works alike on SQLite and PostgreSQL.
    wanted = normalize_events([e.strip() for e in raw.split(",") if e.strip()])
    text = sa.cast(h.c.events, sa.Text)
    return sa.or_(*(text.contains(f'"{event}"', autoescape=True) for event in wanted))


def _calling(raw: str) -> sa.ColumnElement[bool]:
    url: sa.ColumnElement[str] = h.c.config["url"].as_string()
    return url == raw


def _columns(
    urls: Urls, sent: dict[str, Any], current: Any = None, *, merge_config: bool = False
) -> dict[str, Any]:
    """Column values from the fields sent, checked (`current`: the stored row on a change)."""
    values = {k: sent[k] for k in _PLAIN_FIELDS if k in sent}
    if values.get("description") is None and "description" in values:
        values["description"] = ""
    if "type" in sent and sent["type"] not in HOOK_TYPES:
        raise BadRequest(f"type: must be one of {', '.join(HOOK_TYPES)}, got {sent['type']!r}.")
    if "events" in sent:
        values["events"] = normalize_events(sent["events"])
    kind = sent.get("type", current.type if current is not None else "webhook")
    if "config" in sent or "type" in sent:
        config = sent.get("config", current.config if current is not None else {})
        if merge_config and current is not None:
            # PATCH merges keys: the `rossum` CLI sends `"config": {}` with every change.
            config = {**(current.config or {}), **config}
        check_config(kind, config)
        values["config"] = config
    if "token_lifetime_s" in sent:
        values["token_lifetime_s"] = sent["token_lifetime_s"]
    if "token_owner" in sent:
        values["token_owner_id"] = urls.optional_id_from(
            sent["token_owner"], "users", "token_owner"
        )
    return values


async def _check_token_owner(conn: AsyncConnection, who: Actor, values: dict[str, Any]) -> None:
    owner = values.get("token_owner_id")
    if owner is None:
        return
    found = await conn.execute(
        sa.select(t.users.c.id).where(
            t.users.c.id == owner, t.users.c.organization_id == who.organization_id
        )
    )
    if found.first() is None:
        raise BadRequest(f"token_owner: user {owner} does not exist.")


async def _link(
    conn: AsyncConnection, urls: Urls, who: Actor, hook_id: int, sent: dict[str, Any]
) -> None:
    """Store `run_after` and `queues` once the hook row exists (both are checked first)."""
    if "run_after" in sent:
        wanted = list(dict.fromkeys(urls.ids_from(sent["run_after"], "hooks", "run_after")))
        if hook_id in wanted:
            raise BadRequest("run_after: a hook cannot run after itself.")
        rows = await conn.execute(
            sa.select(h.c.id).where(h.c.id.in_(wanted), h.c.organization_id == who.organization_id)
        )
        missing = set(wanted) - {r.id for r in rows}
        if missing:
            raise BadRequest(f"run_after: hook {min(missing)} does not exist.")
        await conn.execute(h.update().where(h.c.id == hook_id).values(run_after=wanted))
    if "queues" in sent:
        queue_ids = await require_queues(
            conn, who, urls.ids_from(sent["queues"], "queues", "queues"), "queues"
        )
        await conn.execute(qh.delete().where(qh.c.hook_id == hook_id))
        if queue_ids:
            await conn.execute(
                qh.insert(), [{"queue_id": q, "hook_id": hook_id} for q in queue_ids]
            )


class Hooks(EditableResource[HookJson, HookBody]):
    noun = "Hook"
    table = h
    body = HookBody
    required = ("name", "config")
    read_errors = (AccessForbidden,)
    create_errors = ()
    listing = Listing(
        filters=(
            Filter("id", h.c.id),
            Filter("name", h.c.name, "str"),
            Filter("type", h.c.type, "strs"),
            Filter("active", h.c.active, "bool"),
            linked("queue", h.c.id, qh.c.hook_id, qh.c.queue_id),
            Filter("events", kind="custom", build=_listening_to, schema=EVENTS_SCHEMA),
            Filter("config_url", kind="custom", build=_calling),
        ),
        ordering={"id": h.c.id, "name": h.c.name, "type": h.c.type, "active": h.c.active},
        default=(h.c.id,),
    )

    def check_reader(self, who: Actor) -> None:
        who.require_manager()

    async def render(
        self, conn: AsyncConnection, urls: Urls, who: Actor, rows: Sequence[Any]
    ) -> list[HookJson]:
        queues = await ids_by_owner(conn, qh.c.hook_id, qh.c.queue_id, [r.id for r in rows])
        return [_render(urls, row, queues[row.id]) for row in rows]

    async def insert(self, conn: AsyncConnection, rt: Runtime, who: Actor, body: HookBody) -> int:
        sent = sent_fields(body)
        values = _columns(rt.urls, sent)
        now = utcnow()
        await _check_token_owner(conn, who, values)
        hook_id = await insert_returning_id(
            conn,
            h,
            organization_id=who.organization_id,
            created_by_id=who.user_id,
            created_at=now,
            modified_by_id=who.user_id,
            modified_at=now,
            **values,
        )
        await _link(conn, rt.urls, who, hook_id, sent)
        return hook_id

    async def change(
        self, conn: AsyncConnection, rt: Runtime, who: Actor, row: Any, body: HookBody
    ) -> None:
        await self._write(conn, rt, who, row, body, merge_config=True)

    async def replace(
        self, conn: AsyncConnection, rt: Runtime, who: Actor, row: Any, body: HookBody
    ) -> None:
        await self._write(conn, rt, who, row, body, merge_config=False)

    async def _write(
        self,
        conn: AsyncConnection,
        rt: Runtime,
        who: Actor,
        row: Any,
        body: HookBody,
        *,
        merge_config: bool,
    ) -> None:
        sent = sent_fields(body)
        values = _columns(rt.urls, sent, row, merge_config=merge_config)
        await _check_token_owner(conn, who, values)
        await conn.execute(
            h.update()
            .where(h.c.id == row.id)
            .values(**values, modified_by_id=who.user_id, modified_at=utcnow())
        )
        await _link(conn, rt.urls, who, row.id, sent)

    async def remove(self, conn: AsyncConnection, rt: Runtime, who: Actor, row: Any) -> None:
        """Other hooks that ran after this one simply lose that dependency."""
        dependants = await conn.execute(
            sa.select(h.c.id, h.c.run_after).where(
                h.c.organization_id == who.organization_id, h.c.id != row.id
            )
        )
        for other in dependants:
            if row.id in (other.run_after or []):
                kept = [x for x in other.run_after if x != row.id]
                await conn.execute(h.update().where(h.c.id == other.id).values(run_after=kept))
        await super().remove(conn, rt, who, row)


def _render(urls: Urls, row: Any, queue_ids: list[int]) -> HookJson:
    return {
        "id": row.id,
        "type": row.type,
        "url": urls.to("hooks", row.id),
        "name": row.name,
        "metadata": row.metadata or {},
        "queues": urls.many("queues", queue_ids),
        "run_after": urls.many("hooks", row.run_after or []),
        "sideload": row.sideload or [],
        "active": row.active,
        "events": row.events or [],
        "config": row.config or {},
        "test": row.test or {},
        "extension_source": "custom",
        "settings": row.settings or {},
        "settings_schema": None,
        "description": row.description,
        "guide": None,
        "read_more_url": None,
        "extension_image_url": None,
        "hook_template": None,
        "token_owner": urls.of("users", row.token_owner_id),
        "token_lifetime_s": row.token_lifetime_s,
        "created_by": urls.of("users", row.created_by_id),
        "created_at": iso(row.created_at),
        "modified_by": urls.of("users", row.modified_by_id),
        "modified_at": iso(row.modified_at),
    }


HOOKS = Hooks()
