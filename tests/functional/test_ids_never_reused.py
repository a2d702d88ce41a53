"""Ids are never reused: a deleted object's URL never comes to name another object, on SQLite
(AUTOINCREMENT tables) and PostgreSQL (sequences), in new databases and in upgraded ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from postroom.clock import utcnow
from postroom.db import tables as t
from postroom.db.engine import Database
from postroom.db.migrate import apply_migrations
from postroom.db.tables import metadata
from tests.conftest import PG_URL, Api, RunningServer, reset_postgres
from tests.smtp_support import wait_for
from tests.upload_helpers import form, id_of, pdf_bytes, wait_for_annotation

FAST_SWEEP = {"POSTROOM_PIPELINE_SWEEP_INTERVAL": "0.2"}


async def _upload(admin: Api, tag: str) -> tuple[int, int]:
    """(annotation id, document id) of one file uploaded into queue 1, once imported."""
    status, body = await admin.post("/queues/1/upload", data=form([(f"{tag}.pdf", pdf_bytes())]))
    assert status == 201, body
    await wait_for_annotation(admin, body["annotation"])
    return id_of(body["annotation"]), id_of(body["document"])


async def test_deleted_annotation_and_document_ids_are_not_given_again(admin: Api) -> None:
    """Deleting the newest document (and its annotation) and uploading again: new, larger ids;
    the deleted URLs stay 404 instead of naming the new objects."""
    await _upload(admin, "first")
    annotation_id, document_id = await _upload(admin, "second")
    await admin.delete(f"/documents/{document_id}", expect=204)
    assert (await admin.get(f"/annotations/{annotation_id}"))[0] == 404

    new_annotation, new_document = await _upload(admin, "third")
    assert new_annotation > annotation_id and new_document > document_id
    assert (await admin.get(f"/annotations/{annotation_id}"))[0] == 404
    assert (await admin.get(f"/documents/{document_id}"))[0] == 404


async def test_deleted_setup_objects_ids_are_not_given_again(admin: Api) -> None:
    """Workspaces, schemas, inboxes and hooks: delete the newest, create another, larger id."""
    bodies: dict[str, dict[str, Any]] = {
        "/workspaces": {"name": "W"},
        "/schemas": {"name": "S", "content": []},
        "/inboxes": {"name": "I"},
        "/hooks": {"name": "H", "config": {"url": "https://example.com/hook"}},
    }
    for path, body in bodies.items():
        _, first = await admin.post(path, json=body, expect=201)
        await admin.delete(f"{path}/{first['id']}", expect=204)
        _, second = await admin.post(path, json=body, expect=201)
        assert second["id"] > first["id"], path


async def test_deleted_queue_id_is_not_given_again(
    server_factory: Any, http: Any, tmp_path: Path
) -> None:
    """A queue deleted by the background duty: the next queue gets a larger id."""
    server: RunningServer = await server_factory(**FAST_SWEEP)
    admin = await Api(http, server.base, {}).login("admin", "admin-secret-password")
    schema = f"{server.api_url}/schemas/1"
    _, doomed = await admin.post("/queues", json={"name": "Doomed", "schema": schema}, expect=201)
    await admin.delete(f"/queues/{doomed['id']}", params={"delete_after": "00:00:00"}, expect=202)

    async def gone() -> bool:
        return (await admin.get(f"/queues/{doomed['id']}"))[0] == 404

    await wait_for(gone)
    _, queue = await admin.post("/queues", json={"name": "Next", "schema": schema}, expect=201)
    assert queue["id"] > doomed["id"]


def _differences(connection: sa.Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), metadata))


async def _insert(db: Database, table: sa.Table, **values: Any) -> int:
    async with db.transaction() as conn:
        result = await conn.execute(table.insert().values(**values).returning(table.c.id))
        return int(result.scalar_one())


async def _delete(db: Database, table: sa.Table, row_id: int) -> None:
    async with db.transaction() as conn:
        await conn.execute(table.delete().where(table.c.id == row_id))


async def test_upgrade_of_a_database_that_deleted_rows(tmp_path: Path) -> None:
    """A database made by revision 0001 that already deleted rows upgrades in place: every row
    and reference is kept (no cascade), and ids deleted after the upgrade are never reused."""
    if PG_URL:
        await reset_postgres(PG_URL)
    db = Database(PG_URL or f"sqlite+aiosqlite:///{tmp_path / 'old.sqlite3'}")
    try:
        await apply_migrations(db, "0001")
        now = utcnow()
        org = await _insert(db, t.organizations, name="Org", created_at=now)
        workspaces = [
            await _insert(db, t.workspaces, organization_id=org, name=f"W{i}", created_at=now)
            for i in range(4)
        ]
        schema = await _insert(db, t.schemas, organization_id=org, name="S")
        queue = await _insert(
            db,
            t.queues,
            organization_id=org,
            workspace_id=workspaces[0],
            schema_id=schema,
            name="Q",
            created_at=now,
        )
        await _delete(db, t.workspaces, workspaces[1])  # deleted before the upgrade

        await apply_migrations(db)

        async with db.reading() as conn:
            kept = (await conn.execute(sa.select(t.workspaces.c.id))).scalars().all()
            queue_row = (await conn.execute(t.queues.select())).one()
            differences = await conn.run_sync(_differences)
        assert sorted(kept) == [workspaces[0], workspaces[2], workspaces[3]]
        assert (queue_row.id, queue_row.workspace_id, queue_row.schema_id) == (
            queue,
            workspaces[0],
            schema,
        )
        assert differences == []

        await _delete(db, t.workspaces, workspaces[3])  # the newest, after the upgrade
        fresh = await _insert(db, t.workspaces, organization_id=org, name="New", created_at=now)
        assert fresh > workspaces[3]
        await _delete(db, t.queues, queue)
        fresh_queue = await _insert(
            db, t.queues, organization_id=org, schema_id=schema, name="Q2", created_at=now
        )
        assert fresh_queue > queue
    finally:
        await db.dispose()
