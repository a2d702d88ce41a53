"""Measure the list endpoints of the setup resources on a populated organization.

    .venv/bin/python bench/setup_lists.py [--users 500] [--queues 50] [--requests 30]

Starts a private Postroom (SQLite in a temp dir, or POSTROOM_DATABASE_URL — its `public` schema
is dropped first, use a scratch database), adds users (each assigned to a few queues), queues,
workspaces, schemas, inboxes and hooks, then times sequential `page_size=100` requests of
/users, /workspaces, /schemas, /inboxes and /hooks and reports median and p95 latency and the SQL
statements per request (constant per page: relations are loaded one query per page).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import aiohttp
import sqlalchemy as sa
from common import ListTimer, bench_service

from postroom.app import Service
from postroom.clock import utcnow
from postroom.db import tables as t

PASSWORD = "bench-password-123"
ENDPOINTS = ("users", "workspaces", "schemas", "inboxes", "hooks")


async def _insert_many(conn: Any, table: sa.Table, rows: list[dict[str, Any]]) -> list[int]:
    ids = []
    for row in rows:
        result = await conn.execute(table.insert().values(**row).returning(table.c.id))
        ids.append(result.scalar_one())
    return ids


async def populate(service: Service, users: int, queues: int) -> None:
    assert service.runtime is not None
    now = utcnow()
    org = {"organization_id": 1}
    async with service.runtime.db.transaction() as conn:
        workspaces = await _insert_many(
            conn, t.workspaces, [{**org, "name": f"w{i}", "created_at": now} for i in range(10)]
        )
        schemas = await _insert_many(
            conn, t.schemas, [{**org, "name": f"s{i}", "content": []} for i in range(queues)]
        )
        inboxes = await _insert_many(
            conn,
            t.inboxes,
            [{**org, "name": f"i{i}", "email": f"i{i}@localhost", "email_prefix": f"i{i}"}
             for i in range(queues)],
        )  # fmt: skip
        queue_ids = await _insert_many(
            conn,
            t.queues,
            [{**org, "name": f"q{i}", "schema_id": schemas[i], "inbox_id": inboxes[i],
              "workspace_id": workspaces[i % 10], "created_at": now} for i in range(queues)],
        )  # fmt: skip
        user_ids = await _insert_many(
            conn,
            t.users,
            [{**org, "username": f"u{i}", "role": "annotator", "date_joined": now}
             for i in range(users)],
        )  # fmt: skip
        await conn.execute(
            t.queue_users.insert(),
            [{"user_id": u, "queue_id": queue_ids[(u + k) % queues]}
             for u in user_ids for k in range(3)],
        )  # fmt: skip
        hooks = await _insert_many(
            conn,
            t.hooks,
            [{**org, "name": f"h{i}", "config": {"url": "https://h.example"}} for i in range(100)],
        )
        await conn.execute(
            t.queue_hooks.insert(),
            [{"hook_id": h, "queue_id": queue_ids[h % queues]} for h in hooks],
        )


async def measure(service: Service, requests: int) -> None:
    assert service.runtime is not None
    dialect = service.runtime.db.engine.dialect.name
    timer = ListTimer(service.runtime.db.engine, service.settings.base_url + "/api/v1", PASSWORD)
    async with aiohttp.ClientSession() as http:
        headers = await timer.login(http)
        for name in ENDPOINTS:
            timing = await timer.time(http, headers, f"/{name}?page_size=100", requests)
            body = timing.body
            print(
                f"{dialect} /{name}: {len(body['results'])} per page of "
                f"{body['pagination']['total']}; {timing.summary()}"
            )


async def main(args: argparse.Namespace) -> None:
    async with bench_service(PASSWORD) as service:
        await populate(service, args.users, args.queues)
        await measure(service, args.requests)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--queues", type=int, default=50)
    parser.add_argument("--requests", type=int, default=30)
    asyncio.run(main(parser.parse_args()))
