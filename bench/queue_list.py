"""Measure GET /api/v1/queues (with live counts) on a populated database.

    .venv/bin/python bench/queue_list.py [--queues 100] [--annotations 20000] [--requests 50]

Starts a private Postroom (SQLite in a temp dir, or POSTROOM_DATABASE_URL — its `public` schema
is dropped first, use a scratch database), creates the queues and annotations spread over the
thirteen statuses, then times sequential list requests of page_size=100 and reports median and
p95 latency and the SQL statements per request.
"""

from __future__ import annotations

import argparse
import asyncio

import aiohttp
from common import ListTimer, bench_service

from postroom.app import Service
from postroom.clock import utcnow
from postroom.db import tables as t
from postroom.domain.queues import COUNT_STATUSES

PASSWORD = "bench-password-123"


async def populate(service: Service, queues: int, annotations: int) -> None:
    assert service.runtime is not None
    now = utcnow()
    async with service.runtime.db.transaction() as conn:
        ids = []
        for i in range(queues - 1):
            result = await conn.execute(
                t.queues.insert()
                .values(
                    organization_id=1, name=f"q{i}", schema_id=1, workspace_id=1, created_at=now
                )
                .returning(t.queues.c.id)
            )
            ids.append(result.scalar_one())
        ids.append(1)
        doc = await conn.execute(
            t.documents.insert()
            .values(organization_id=1, sha256="0" * 64, mime_type="application/pdf",
                    original_file_name="a.pdf", arrived_at=now, created_at=now)
            .returning(t.documents.c.id)
        )  # fmt: skip
        doc_id = doc.scalar_one()
        rows = [
            {"organization_id": 1, "queue_id": ids[n % len(ids)], "document_id": doc_id,
             "schema_id": 1, "status": COUNT_STATUSES[n % len(COUNT_STATUSES)],
             "arrived_at": now, "created_at": now}
            for n in range(annotations)
        ]  # fmt: skip
        for start in range(0, len(rows), 1000):
            await conn.execute(t.annotations.insert(), rows[start : start + 1000])


async def main(args: argparse.Namespace) -> None:
    async with bench_service(PASSWORD) as service:
        await populate(service, args.queues, args.annotations)
        await measure(service, args.requests)


async def measure(service: Service, requests: int) -> None:
    assert service.runtime is not None
    timer = ListTimer(service.runtime.db.engine, service.settings.base_url + "/api/v1", PASSWORD)
    async with aiohttp.ClientSession() as http:
        headers = await timer.login(http)
        timing = await timer.time(http, headers, "/queues?page_size=100", requests)
    results = timing.body["results"]
    total = sum(sum(q["counts"].values()) for q in results)
    print(
        f"{service.runtime.db.engine.dialect.name}: {len(results)} queues/page, "
        f"{total} annotations counted; {timing.summary()}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queues", type=int, default=100)
    parser.add_argument("--annotations", type=int, default=20000)
    parser.add_argument("--requests", type=int, default=50)
    asyncio.run(main(parser.parse_args()))
