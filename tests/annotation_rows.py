"""Annotations written straight into the database, for lifecycle unit tests and the export bench.

HTTP flows create annotations through real uploads; tests of the lifecycle table and of export
at scale need many annotations in chosen statuses quickly, so this inserts the rows the intake
would have made (upload, documents, annotations with content in the annotation-data format).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from postroom.clock import utcnow
from postroom.db import tables as t
from postroom.runtime import Runtime


@dataclass(frozen=True)
class QueueRef:
    organization_id: int
    queue_id: int
    schema_id: int
    schema_content: list[dict[str, Any]]
    user_id: int


async def first_queue(svc: Runtime) -> QueueRef:
    """The queue made on first start, its schema and the admin user."""
    async with svc.db.reading() as conn:
        q = (await conn.execute(sa.select(t.queues).order_by(t.queues.c.id).limit(1))).one()
        schema = (
            await conn.execute(sa.select(t.schemas.c.content).where(t.schemas.c.id == q.schema_id))
        ).scalar_one()
        user_id = (
            await conn.execute(sa.select(t.users.c.id).order_by(t.users.c.id).limit(1))
        ).scalar_one()
    return QueueRef(q.organization_id, q.id, q.schema_id, schema, user_id)


async def store_blob(svc: Runtime, data: bytes) -> str:
    writer = svc.blobs.open_writer()
    await writer.write(data)
    return await writer.commit()


def build_content(
    schema: Sequence[Mapping[str, Any]],
    values: Mapping[str, str],
    line_items: Sequence[Mapping[str, str]] = (),
) -> list[dict[str, Any]]:
    """Content sections whose datapoints take `values[schema_id]`; tables get `line_items` rows."""
    counter = iter(range(1, 1_000_000))

    def datapoint(node: Mapping[str, Any], source: Mapping[str, str]) -> dict[str, Any]:
        value = source.get(node["id"], "")
        return {
            "id": next(counter),
            "schema_id": node["id"],
            "category": "datapoint",
            "content": {"value": value, "normalized_value": value, "page": None},
        }

    def child(node: Mapping[str, Any]) -> dict[str, Any]:
        if node["category"] != "multivalue":
            return datapoint(node, values)
        template = node["children"]
        rows = []
        for item in line_items:
            if template["category"] == "tuple":
                rows.append(
                    {
                        "id": next(counter),
                        "schema_id": template["id"],
                        "category": "tuple",
                        "children": [datapoint(c, item) for c in template["children"]],
                    }
                )
            else:
                rows.append(datapoint(template, item))
        return {
            "id": next(counter),
            "schema_id": node["id"],
            "category": "multivalue",
            "children": rows,
        }

    return [
        {
            "id": next(counter),
            "schema_id": section["id"],
            "category": "section",
            "children": [child(c) for c in section["children"]],
        }
        for section in schema
    ]


async def insert_annotations(
    svc: Runtime,
    queue: QueueRef,
    count: int,
    *,
    status: str = "to_review",
    values: Mapping[str, str] | None = None,
    line_items: Sequence[Mapping[str, str]] = (),
    blob_key: str | None = None,
    file_name: str = "invoice.pdf",
    batch: int = 1000,
) -> list[int]:
    """Insert `count` annotations (each with its document) in `status`; returns their ids."""
    now = utcnow()
    content = build_content(queue.schema_content, values or {}, line_items)
    key = blob_key or hashlib.sha256(b"no bytes stored").hexdigest()
    ids: list[int] = []
    async with svc.db.transaction() as conn:
        upload_id = (
            await conn.execute(
                t.uploads.insert()
                .values(
                    organization_id=queue.organization_id, queue_id=queue.queue_id, created_at=now
                )
                .returning(t.uploads.c.id)
            )
        ).scalar_one()
    for start in range(0, count, batch):
        size = min(batch, count - start)
        async with svc.db.transaction() as conn:
            doc_result = (
                await conn.execute(
                    t.documents.insert().returning(t.documents.c.id, sort_by_parameter_order=True),
                    [
                        {
                            "organization_id": queue.organization_id,
                            "upload_id": upload_id,
                            "s3_name": key,
                            "sha256": key,
                            "size": 10,
                            "mime_type": "application/pdf",
                            "original_file_name": file_name,
                            "arrived_at": now,
                            "created_at": now,
                        }
                        for _ in range(size)
                    ],
                )
            ).scalars()
            doc_ids = [int(i) for i in doc_result]
            new_ids = (
                await conn.execute(
                    t.annotations.insert().returning(
                        t.annotations.c.id, sort_by_parameter_order=True
                    ),
                    [
                        {
                            "organization_id": queue.organization_id,
                            "queue_id": queue.queue_id,
                            "document_id": doc_id,
                            "schema_id": queue.schema_id,
                            "upload_id": upload_id,
                            "creator_id": queue.user_id,
                            "status": status,
                            "content": content,
                            "metadata": {},
                            "arrived_at": now,
                            "created_at": now,
                        }
                        for doc_id in doc_ids
                    ],
                )
            ).scalars()
            ids.extend(int(i) for i in new_ids)
    return ids


async def annotation_row(svc: Runtime, annotation_id: int) -> Any:
    async with svc.db.reading() as conn:
        return (
            await conn.execute(sa.select(t.annotations).where(t.annotations.c.id == annotation_id))
        ).one()
