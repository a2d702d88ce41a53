"""REST endpoints for users (`/users`), and the user JSON shared with `/auth/user`."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.clock import iso
from postroom.db import tables as t
from postroom.errors import NotFound
from postroom.permissions import GROUP_IDS
from postroom.web.urls import Urls

routes = web.RouteTableDef()


def render_user(urls: Urls, row: Any, queue_ids: list[int]) -> dict[str, Any]:
    return {
        "id": row.id,
        "url": urls.to("users", row.id),
        "first_name": row.first_name,
        "last_name": row.last_name,
        "email": row.email,
        "phone_number": None,
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
        "deleted": False,
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
    row = (await conn.execute(sa.select(t.users).where(t.users.c.id == user_id))).first()
    if row is None:
        raise NotFound()
    queue_ids = (await queue_ids_of_users(conn, [user_id]))[user_id]
    return render_user(urls, row, queue_ids)
