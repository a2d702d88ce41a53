"""Files posted over HTTP: `POST /queues/{id}/upload` and `POST /uploads` (an upload into a
queue), and `POST /documents` (a document without upload or annotation).

Order of work per upload: who and which queue (404/403/409 before a large body is read; a small
one is read meanwhile, in memory) → stream the body into temp files under the size limit
(`intake.parts`) → validate the fields → make the blobs durable (`intake.storing`) → one unit of
the group commit: the queue-state rule, the file-type rule and the records (`intake.accept`) →
wake the workers → answer.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from postroom import metrics
from postroom.blobs.local import BUFFER_BYTES
from postroom.clock import utcnow
from postroom.db.commits import group_commit
from postroom.domain import documents
from postroom.domain.access import Actor
from postroom.errors import BadRequest
from postroom.intake.accept import (
    Accepted,
    KeptFile,
    Origin,
    Submission,
    accept_files,
    admit,
    check_uploader,
    insert_document,
    judge,
    refuse_identical,
)
from postroom.intake.parts import (
    MAX_VALUES_BYTES,
    Body,
    BodyRules,
    ReceivedBody,
    json_object_field,
    receive_body,
    store_files,
    values_field,
)
from postroom.intake.storing import forget_new
from postroom.runtime import Runtime

MAX_PARENT_BYTES = 2048
UPLOAD_PREFIX = "upload:"


def _rules(rt: Runtime, **fields: int) -> BodyRules:
    limits = rt.settings.limits
    return BodyRules(
        max_body_bytes=limits.max_upload_bytes,
        field_limits={"metadata": limits.max_metadata_bytes, **fields},
        idle_timeout_s=limits.upload_idle_timeout_s,
        min_bytes_per_s=limits.upload_min_bytes_per_s,
    )


def _upload_key(key: str) -> str:
    """`values` keys as rir_field_names: `upload:<key>`, a bare `<key>` meaning the same. Any
    other prefix is kept under `upload:` too, so an upload cannot pose as e-mail data."""
    if not key:
        raise BadRequest("values: keys must not be empty.")
    return key if key.startswith(UPLOAD_PREFIX) else UPLOAD_PREFIX + key


async def _checked_body(rt: Runtime, who: Actor, queue_id: int, body: Body) -> ReceivedBody:
    """The queue check (404/403/409), then the body.

    A small body (Content-Length within one blob buffer) is read while the queue is checked: it
    stays in memory until stored, so a refusal still leaves nothing on disk, and a small upload
    does not wait for two database round trips in a row. The queue's answer wins over any
    complaint about the body.
    """
    rules = _rules(rt, values=MAX_VALUES_BYTES)
    length = body.content_length
    if length is None or length > BUFFER_BYTES:
        await check_uploader(rt, who, queue_id)
        return await receive_body(body, rt.blobs, rules)
    check = asyncio.create_task(check_uploader(rt, who, queue_id))
    try:
        received = await receive_body(body, rt.blobs, rules)
    except BaseException:
        await check  # its refusal, if any, is the answer
        raise
    try:
        await check
    except BaseException:
        await received.discard_quietly()
        raise
    return received


async def receive_upload(
    rt: Runtime,
    who: Actor,
    queue_id: int,
    body: Body,
    *,
    task_type: str | None,
    reject_identical: bool = False,
) -> Accepted:
    """The whole intake of one upload; returns once everything is durable and committed."""
    received = await _checked_body(rt, who, queue_id, body)
    try:
        metadata = json_object_field(received, "metadata")
        values = values_field(received, _upload_key)
        if not received.files:
            raise BadRequest(
                "No file given: send it as a multipart part named content, or as the request body."
            )
        if reject_identical:
            if len(received.files) != 1:
                raise BadRequest("reject_identical: only one file may be uploaded per request.")
            first = received.files[0]
            async with rt.db.reading() as conn:
                identity = (first.writer.key, first.name)
                await refuse_identical(conn, rt.urls, who, identity, lock=False)
        stored = await store_files(received, rt.blobs)
    except BaseException:
        await received.discard_quietly()
        raise

    async def create_records(conn: AsyncConnection) -> Accepted:
        if reject_identical:
            identity = (stored[0].blob_key, stored[0].original_file_name)
            await refuse_identical(conn, rt.urls, who, identity, lock=True)
        queue = await admit(conn, who.organization_id, queue_id)
        kept = [KeptFile(file) for file in stored]
        submission = Submission(
            organization_id=who.organization_id,
            creator_id=who.user_id,
            files=judge(kept, queue.settings, refused_as_documents=False),
            metadata=metadata,
            rir_values=values,
            task_type=task_type,
        )
        return await accept_files(conn, submission, queue)

    try:
        accepted = await group_commit(rt.db).run(create_records)
    except BaseException:
        await forget_new(rt.blobs, stored)
        raise
    rt.jobs_available.set()
    metrics.UPLOADED_FILES.labels(channel="http").inc(len(stored))
    return accepted


async def receive_document(rt: Runtime, who: Actor, body: Body) -> documents.DocumentJson:
    """One document from one file (multipart `content` or raw body); no upload, no annotation."""
    who.require_importer()
    received = await receive_body(body, rt.blobs, _rules(rt, parent=MAX_PARENT_BYTES))
    try:
        metadata = json_object_field(received, "metadata")
        if len(received.files) != 1:
            raise BadRequest(
                "content: exactly one file is required (a multipart part named content, "
                "or the request body)."
            )
        async with rt.db.reading() as conn:
            parent = received.fields.get("parent")
            parent_id = await documents.DOCUMENTS.parent_id(conn, rt.urls, who, parent)
        (stored,) = await store_files(received, rt.blobs)
    except BaseException:
        await received.discard_quietly()
        raise

    async def create_record(conn: AsyncConnection) -> Any:
        origin: Origin = {
            "organization_id": who.organization_id,
            "creator_id": who.user_id,
            "email_id": None,
        }
        document_id = await insert_document(
            conn, stored, origin, utcnow(), parent_id=parent_id, metadata=metadata
        )
        return await documents.DOCUMENTS.one(conn, rt.urls, who, document_id)

    try:
        created: documents.DocumentJson = await group_commit(rt.db).run(create_record)
    except BaseException:
        await forget_new(rt.blobs, [stored])
        raise
    metrics.UPLOADED_FILES.labels(channel="http").inc()
    return created
