"""Documents: one stored file each (content-addressed bytes, the sniffed type, the name it came
with), created by the intake; list, retrieve, content, PATCH metadata, DELETE.

A document is visible through the queue of its upload or e-mail; one created by `POST /documents`
belongs to no queue and is visible to its creator and to admins and managers. `content` is the
exact stored bytes with the sniffed type and the UTF-8 file name (RFC 6266 / 5987). Deleting a
document deletes its annotations; its bytes go when no other document shares them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import WithJsonSchema
from sqlalchemy.ext.asyncio import AsyncConnection
from typing_extensions import TypedDict

from postroom.clock import iso
from postroom.db import tables as t
from postroom.domain.access import Actor
from postroom.domain.listing import Filter, Listing
from postroom.domain.relations import ids_by_owner
from postroom.domain.resources import Body, EditableResource, body_schema
from postroom.domain.stored_files import (
    StoredBytes,
    content_disposition,
    disposition_for,
    stored_bytes,
)
from postroom.domain.uploads import visible_by_origin
from postroom.errors import BadRequest
from postroom.fields import JsonObject, OptionalUrl, Timestamp, Url
from postroom.runtime import Runtime
from postroom.urls import Urls

d = t.documents
D = d.c
# Fields a client may send back unchanged in a PATCH (Rossum ignores read-only fields).
READ_ONLY_FIELDS = frozenset(
    (
        "id",
        "url",
        "s3_name",
        "parent",
        "email",
        "annotations",
        "mime_type",
        "creator",
        "created_at",
        "arrived_at",
        "original_file_name",
        "content",
        "attachment_status",
    )
)


class DocumentJson(TypedDict):
    id: int
    url: Url
    s3_name: str
    parent: OptionalUrl
    email: OptionalUrl
    annotations: list[Url]
    mime_type: str
    creator: OptionalUrl
    created_at: Timestamp
    arrived_at: Timestamp
    original_file_name: str
    content: Url
    attachment_status: str | None
    metadata: JsonObject


class DocumentPatch(Body):
    """Only `metadata` changes; the read-only fields of a Document may be sent back unchanged."""

    # Other fields are the read-only ones, sent back unchanged or refused: none to declare.
    model_config = Body.model_config | {
        "extra": "allow",
        "json_schema_extra": body_schema(top={"additionalProperties": False}),
    }

    metadata: Annotated[Any, WithJsonSchema({"type": "object"})] = None


async def document_annotations(
    conn: AsyncConnection, document_ids: list[int]
) -> dict[int, list[int]]:
    """document id → its annotation ids, in id order."""
    a = t.annotations.c
    return await ids_by_owner(conn, a.document_id, a.id, document_ids)


def render_document(urls: Urls, row: Any, annotation_ids: list[int]) -> DocumentJson:
    url = urls.to("documents", row.id)
    return {
        "id": row.id,
        "url": url,
        # The blob key; empty once the bytes were purged (the SDK needs a string).
        "s3_name": row.s3_name or "",
        "parent": urls.of("documents", row.parent_id),
        "email": urls.of("emails", row.email_id),
        "annotations": urls.many("annotations", annotation_ids),
        "mime_type": row.mime_type,
        "creator": urls.of("users", row.creator_id),
        "created_at": iso(row.created_at),
        "arrived_at": iso(row.arrived_at),
        "original_file_name": row.original_file_name,
        "content": url + "/content",
        "attachment_status": row.attachment_status,
        "metadata": row.metadata or {},
    }


class Documents(EditableResource[DocumentJson, DocumentPatch]):
    noun = "Document"
    table = d
    body = DocumentPatch
    listing = Listing(
        filters=(
            Filter("id", D.id),
            Filter("email", D.email_id),
            Filter("creator", D.creator_id),
            Filter("parent", D.parent_id),
            Filter("upload", D.upload_id),
            Filter("original_file_name", D.original_file_name, "str"),
            Filter("attachment_status", D.attachment_status, "strs"),
            Filter("mime_type", D.mime_type, "strs"),
            Filter("arrived_at_before", D.arrived_at, "before"),
            Filter("arrived_at_after", D.arrived_at, "after"),
            Filter("created_at_before", D.created_at, "before"),
            Filter("created_at_after", D.created_at, "after"),
        ),
        ordering={
            "id": D.id,
            "arrived_at": D.arrived_at,
            "created_at": D.created_at,
            "original_file_name": D.original_file_name,
            "mime_type": D.mime_type,
            "attachment_status": D.attachment_status,
        },
        default=(D.id,),
    )

    def visible(self, who: Actor) -> sa.ColumnElement[bool]:
        return visible_by_origin(who, d)

    def check_writer(self, who: Actor) -> None:
        who.require_annotator()

    async def render(
        self, conn: AsyncConnection, urls: Urls, who: Actor, rows: Sequence[Any]
    ) -> list[DocumentJson]:
        annotations = await document_annotations(conn, [row.id for row in rows])
        return [render_document(urls, row, annotations[row.id]) for row in rows]

    async def change(
        self, conn: AsyncConnection, rt: Runtime, who: Actor, row: Any, body: DocumentPatch
    ) -> None:
        metadata = _metadata(rt, body)
        if metadata is not None:
            await conn.execute(d.update().where(D.id == row.id).values(metadata=metadata))

    async def delete(self, rt: Runtime, who: Actor, object_id: int) -> None:
        """Delete the document (its annotations with it); its bytes go when no other document
        shares them."""
        async with rt.db.reading() as conn:
            await self.load(conn, who, object_id)
        self.check_writer(who)
        async with rt.db.transaction() as conn:
            row = await self.load(conn, who, object_id)
            # Children keep existing without their parent (the reference's parent is informative).
            await conn.execute(d.update().where(D.parent_id == row.id).values(parent_id=None))
            await conn.execute(d.delete().where(D.id == row.id))
            shared = await conn.execute(sa.select(D.id).where(D.sha256 == row.sha256).limit(1))
            still_used = shared.first() is not None
        if row.s3_name and not still_used:
            await rt.blobs.delete(row.s3_name)

    async def content(self, rt: Runtime, who: Actor, object_id: int) -> StoredBytes:
        """The original bytes, with the sniffed type and the UTF-8 file name."""
        async with rt.db.reading() as conn:
            row = await self.load(conn, who, object_id)
        headers = {
            "Content-Type": row.mime_type,
            "Content-Disposition": content_disposition(
                row.original_file_name, disposition_for(row.mime_type)
            ),
            # The bytes never change (content-addressed); the file name does not leak into caches.
            "Cache-Control": "private, max-age=3600",
        }
        return await stored_bytes(rt, row.s3_name, f"document {row.id}", headers)

    async def parent_id(
        self, conn: AsyncConnection, urls: Urls, who: Actor, raw: str | None
    ) -> int | None:
        """The `parent` of a new document: a document the actor sees (400 otherwise)."""
        if raw is None or not raw.strip():
            return None
        parent_id = urls.id_from(raw.strip(), "documents", "parent")
        visible = await conn.execute(sa.select(D.id).where(D.id == parent_id, self.visible(who)))
        if visible.first() is None:
            raise BadRequest(f"parent: document {parent_id} not found.")
        return parent_id


def _metadata(rt: Runtime, body: DocumentPatch) -> dict[str, Any] | None:
    unknown = sorted(set(body.model_extra or {}) - READ_ONLY_FIELDS)
    if unknown:
        raise BadRequest(f"{unknown[0]}: unknown field (only metadata can be changed).")
    if "metadata" not in body.model_fields_set:
        return None
    metadata = body.metadata
    if not isinstance(metadata, dict):
        raise BadRequest("metadata: expected a JSON object.")
    limit = rt.settings.limits.max_metadata_bytes
    if len(json.dumps(metadata, ensure_ascii=False).encode()) > limit:
        raise BadRequest(f"metadata: larger than {limit} bytes.")
    return metadata


DOCUMENTS = Documents()
