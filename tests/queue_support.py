"""Helpers of the Queue API tests: the queue fields, and records the API under test does not make."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from postroom.clock import utcnow
from postroom.db import tables as t
from tests.conftest import Api, RunningServer

QUEUE_FIELDS = {
    "id", "name", "url", "workspace", "connector", "webhooks", "hooks", "schema", "inbox",
    "users", "session_timeout", "rir_url", "rir_params", "dedicated_engine", "generic_engine",
    "counts", "default_score_threshold", "automation_enabled", "automation_level", "locale",
    "metadata", "use_confirmed_state", "document_lifetime", "status", "modified_by",
    "modified_at", "settings", "workflows", "delete_after",
}  # fmt: skip


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def insert_rows(server: RunningServer, table: Any, rows: list[dict[str, Any]]) -> list[int]:
    """Insert records the API under test does not create itself (hooks, annotations)."""
    assert server.service.runtime is not None
    ids = []
    async with server.service.runtime.db.transaction() as conn:
        for row in rows:
            result = await conn.execute(table.insert().values(**row).returning(table.c.id))
            ids.append(result.scalar_one())
    return ids


async def add_hooks(admin: Api, count: int) -> list[str]:
    urls = []
    for i in range(count):
        _, hook = await admin.post(
            "/hooks",
            json={"name": f"hook {i}", "type": "webhook", "events": ["annotation_status"],
                  "config": {"url": f"https://example.com/hook/{i}"}},
            expect=201,
        )  # fmt: skip
        urls.append(hook["url"])
    return urls


async def add_annotations(
    server: RunningServer, queue: dict[str, Any], statuses: list[str]
) -> None:
    now = utcnow()
    schema_id = int(queue["schema"].rsplit("/", 1)[1])
    for status in statuses:
        [doc] = await insert_rows(
            server,
            t.documents,
            [{"organization_id": 1, "sha256": "0" * 64, "mime_type": "application/pdf",
              "original_file_name": "a.pdf", "arrived_at": now, "created_at": now}],
        )  # fmt: skip
        await insert_rows(
            server,
            t.annotations,
            [{"organization_id": 1, "queue_id": queue["id"], "document_id": doc,
              "schema_id": schema_id, "status": status, "arrived_at": now, "created_at": now}],
        )  # fmt: skip


async def first_queue(admin: Api) -> dict[str, Any]:
    status, body = await admin.get("/queues")
    assert status == 200
    return body["results"][0]  # type: ignore[no-any-return]


async def new_queue(admin: Api, **fields: Any) -> dict[str, Any]:
    schema = (await first_queue(admin))["schema"]
    _, body = await admin.post(
        "/queues", json={"name": "Q", "schema": schema, **fields}, expect=201
    )
    return body  # type: ignore[no-any-return]
