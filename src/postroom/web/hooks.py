"""REST endpoints for hooks (`/hooks`): stored extension objects that queues point at.

Postroom keeps hooks so that `queue.hooks` names real objects and clients that manage hooks
work; delivering events is another part's job. Hooks carry endpoints and secrets, so only admins
and managers read or write them (others get 403). `queues` is the queue_hooks relation seen from
the hook. Events are checked against the reference's list; a whole event (`annotation_status`)
is stored as its actions, because clients read `events` as a list of `event.action` values.
PATCH merges the keys of `config` into the stored one (so a secret survives a URL change); PUT
replaces it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.clock import iso, utcnow
from postroom.db import tables as t
from postroom.errors import BadRequest, NotFound
from postroom.organization import insert_returning_id
from postroom.permissions import Actor
from postroom.web.bodies import path_id, read_object
from postroom.web.keys import actor, services
from postroom.web.listing import Filter, apply_filters, apply_ordering, envelope, paginate
from postroom.web.related import ids_by_owner, require_queues
from postroom.web.resource_models import HookBody, parse_body
from postroom.web.urls import Urls

routes = web.RouteTableDef()

h = t.hooks
qh = t.queue_hooks

# Every `event.action` of the reference (and of the official SDK), by event.
EVENT_ACTIONS: dict[str, tuple[str, ...]] = {
    "annotation_status": ("changed",),
    "annotation_content": (
        "initialize",
        "started",
        "user_update",
        "updated",
        "confirm",
        "export",
    ),
    "upload": ("created",),
    "email": ("received",),
    "invocation": ("scheduled", "manual", "interface"),
}
HOOK_TYPES = ("webhook", "function")
FUNCTION_RUNTIMES = ("nodejs22.x", "python3.12")


def render_hook(urls: Urls, row: Any, queue_ids: list[int]) -> dict[str, Any]:
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


async def _render_rows(conn: AsyncConnection, urls: Urls, rows: list[Any]) -> list[dict[str, Any]]:
    queues = await ids_by_owner(conn, qh.c.hook_id, qh.c.queue_id, [r.id for r in rows])
    return [render_hook(urls, row, queues[row.id]) for row in rows]


def _serving_queues(raw: str) -> sa.ColumnElement[bool]:
    ids = Filter("queue", qh.c.queue_id).clause(raw)
    return h.c.id.in_(sa.select(qh.c.hook_id).where(ids))


def _listening_to(raw: str) -> sa.ColumnElement[bool]:
    # Events are checked names ([a-z_.]), so matching the quoted name in the JSON text is exact
    # and works alike on SQLite and PostgreSQL.
    wanted = normalize_events([e.strip() for e in raw.split(",") if e.strip()])
    text = sa.cast(h.c.events, sa.Text)
    return sa.or_(*(text.contains(f'"{event}"', autoescape=True) for event in wanted))


def _calling(raw: str) -> sa.ColumnElement[bool]:
    return h.c.config["url"].as_string() == raw


FILTERS = (
    Filter("id", h.c.id),
    Filter("name", h.c.name, "str"),
    Filter("type", h.c.type, "strs"),
    Filter("active", h.c.active, "bool"),
    Filter("queue", kind="custom", build=_serving_queues),
    Filter("events", kind="custom", build=_listening_to),
    Filter("config_url", kind="custom", build=_calling),
)
ORDERING = {"id": h.c.id, "name": h.c.name, "type": h.c.type, "active": h.c.active}


@routes.get("/api/v1/hooks")
async def list_hooks(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    who.require_manager()
    stmt = sa.select(h).where(h.c.organization_id == who.organization_id)
    stmt = apply_filters(stmt, request.query, FILTERS)
    stmt = apply_ordering(stmt, request.query.get("ordering"), ORDERING, [h.c.id])
    async with svc.db.reading() as conn:
        rows, pagination = await paginate(conn, request, svc.urls.base, stmt)
        results = await _render_rows(conn, svc.urls, rows)
    return web.json_response(envelope(pagination, results))


async def _hook_row(conn: AsyncConnection, who: Actor, hook_id: int) -> Any:
    row = (
        await conn.execute(
            sa.select(h).where(h.c.id == hook_id, h.c.organization_id == who.organization_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"Hook {hook_id} not found.")
    return row


async def _hook_json(conn: AsyncConnection, urls: Urls, who: Actor, hook_id: int) -> Any:
    return (await _render_rows(conn, urls, [await _hook_row(conn, who, hook_id)]))[0]


@routes.get("/api/v1/hooks/{id}")
async def retrieve_hook(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    who.require_manager()
    async with svc.db.reading() as conn:
        return web.json_response(await _hook_json(conn, svc.urls, who, path_id(request)))


def normalize_events(events: list[str]) -> list[str]:
    """Each event checked, whole events expanded to their actions, duplicates dropped."""
    found: list[str] = []
    for event in events:
        name, _, action = event.partition(".")
        actions = EVENT_ACTIONS.get(name)
        if actions is None or (action and action not in actions):
            raise BadRequest(f"events: unknown event {event!r}.")
        found += [f"{name}.{a}" for a in ((action,) if action else actions)]
    return list(dict.fromkeys(found))


def _check_config(kind: str, config: dict[str, Any]) -> None:
    if kind == "webhook":
        url = config.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise BadRequest("config.url: a webhook needs an http(s) URL to call.")
    else:
        if config.get("runtime") not in FUNCTION_RUNTIMES:
            raise BadRequest(f"config.runtime: must be one of {', '.join(FUNCTION_RUNTIMES)}.")
        if not isinstance(config.get("code"), str):
            raise BadRequest("config.code: a function needs its source code as a string.")


def _columns(
    urls: Urls, sent: dict[str, Any], current: Any = None, *, merge_config: bool = False
) -> dict[str, Any]:
    plain = ("name", "type", "active", "settings", "sideload", "metadata", "description", "test")
    values = {k: sent[k] for k in plain if k in sent}
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
        _check_config(kind, config)
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


@routes.post("/api/v1/hooks")
async def create_hook(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    who.require_manager()
    _body, sent = parse_body(HookBody, await read_object(request), required=("name", "config"))
    values = _columns(svc.urls, sent)
    now = utcnow()
    async with svc.db.transaction() as conn:
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
        await _link(conn, svc.urls, who, hook_id, sent)
        body = await _hook_json(conn, svc.urls, who, hook_id)
    return web.json_response(body, status=201)


async def _update_hook(request: web.Request, *, partial: bool) -> web.Response:
    svc, who = services(request), actor(request)
    who.require_manager()
    hook_id = path_id(request)
    async with svc.db.reading() as conn:
        await _hook_row(conn, who, hook_id)
    _body, sent = parse_body(
        HookBody, await read_object(request), required=("name", "config"), partial=partial
    )
    async with svc.db.transaction() as conn:
        row = await _hook_row(conn, who, hook_id)
        values = _columns(svc.urls, sent, row, merge_config=partial)
        await _check_token_owner(conn, who, values)
        await conn.execute(
            h.update()
            .where(h.c.id == hook_id)
            .values(**values, modified_by_id=who.user_id, modified_at=utcnow())
        )
        await _link(conn, svc.urls, who, hook_id, sent)
        body = await _hook_json(conn, svc.urls, who, hook_id)
    return web.json_response(body)


@routes.patch("/api/v1/hooks/{id}")
async def patch_hook(request: web.Request) -> web.Response:
    return await _update_hook(request, partial=True)


@routes.put("/api/v1/hooks/{id}")
async def put_hook(request: web.Request) -> web.Response:
    return await _update_hook(request, partial=False)


@routes.delete("/api/v1/hooks/{id}")
async def delete_hook(request: web.Request) -> web.Response:
    svc, who = services(request), actor(request)
    who.require_manager()
    hook_id = path_id(request)
    async with svc.db.transaction() as conn:
        await _hook_row(conn, who, hook_id)
        # Other hooks that ran after this one simply lose that dependency.
        dependants = await conn.execute(
            sa.select(h.c.id, h.c.run_after).where(
                h.c.organization_id == who.organization_id, h.c.id != hook_id
            )
        )
        for other in dependants:
            if hook_id in (other.run_after or []):
                kept = [x for x in other.run_after if x != hook_id]
                await conn.execute(h.update().where(h.c.id == other.id).values(run_after=kept))
        await conn.execute(h.delete().where(h.c.id == hook_id))
    return web.Response(status=204)
