"""The one place where received files become records: queue gating, and the single transaction
that creates upload, documents, annotations (`importing`), task and pipeline jobs.

Both receivers call this. HTTP: stream each file into a `BlobWriter`, `commit()` it (fsynced),
then `accept_files` inside `db.transaction()`, then answer. SMTP: spool + parse the message, store
the raw message and each attachment as blobs, then create the email record and call
`accept_files` in the same transaction, then answer 250.

A file whose type the queue does not accept still gets its document, annotation and job: the
job's payload carries `rejected_reason` and the pipeline ends that annotation `failed_import`
with the reason as its message (SPEC §4). A file with `attachment_status` set (filtered e-mail
attachment) gets a document only.

OWNER: HTTP upload issue (#3). The SMTP issue (#4) calls it with `email_id` set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.clock import utcnow
from postroom.db import tables as t
from postroom.errors import ConflictStatus, NotFound
from postroom.intake.sniff import rejection_reason

ACTIVE = "active"
IMPORTING = "importing"
IMPORT_JOB = "import"
# How long a task stays readable (Rossum deletes expired tasks periodically).
TASK_LIFETIME = timedelta(days=7)


@dataclass(frozen=True)
class StoredFile:
    """A file whose bytes are already durable in the blob store."""

    blob_key: str  # sha256 hex, also the document's s3_name
    size: int
    mime_type: str  # sniffed from the bytes (intake.sniff), never the client's claim
    original_file_name: str  # verbatim, as the client named it; never a filesystem path
    # Set when the file is kept as a document only (email attachment filtered: why).
    attachment_status: str | None = None


@dataclass(frozen=True)
class Submission:
    organization_id: int
    queue_id: int
    creator_id: int | None
    files: list[StoredFile]
    metadata: dict[str, Any] = field(default_factory=dict)  # → annotation.metadata
    # rir_field_name → value, applied by the pipeline's content step to datapoints whose
    # `rir_field_names` contain the key: "upload:note", "email_header:subject", ...
    rir_values: dict[str, Any] = field(default_factory=dict)
    email_id: int | None = None
    task_type: str | None = "upload_created"  # None: no task (POST /queues/{id}/upload)


@dataclass(frozen=True)
class Accepted:
    upload_id: int
    task_id: int | None
    # (document_id, annotation_id or None when the file was filtered)
    documents: list[tuple[int, int | None]]

    @property
    def annotation_ids(self) -> list[int]:
        return [a for _d, a in self.documents if a is not None]


# Built once: intake runs these for every file, and a statement built per call costs more
# Python time (construction, cache key) than SQLite takes to run it.
_Q = t.queues.c
_QUEUE = sa.select(_Q.id, _Q.organization_id, _Q.schema_id, _Q.status, _Q.settings).where(
    _Q.id == sa.bindparam("queue_id"), _Q.organization_id == sa.bindparam("organization_id")
)
_QUEUE_LOCKED = _QUEUE.with_for_update(read=True)
_IDENTICAL = (
    sa.select(t.documents.c.id)
    .where(
        t.documents.c.organization_id == sa.bindparam("organization_id"),
        t.documents.c.sha256 == sa.bindparam("sha256"),
        t.documents.c.original_file_name == sa.bindparam("name"),
    )
    .limit(1)
)
_INSERTS = {
    table.name: table.insert().returning(table.c.id)
    for table in (t.uploads, t.documents, t.annotations, t.tasks, t.jobs)
}


@dataclass(frozen=True)
class QueueForIntake:
    id: int
    organization_id: int
    schema_id: int
    status: str
    settings: dict[str, Any]


async def queue_for_intake(
    conn: AsyncConnection, organization_id: int, queue_id: int, *, lock: bool = False
) -> QueueForIntake:
    """The queue's intake facts; NotFound outside the organization, ConflictStatus unless active.

    `lock` (PostgreSQL) holds a share lock on the queue row until the transaction ends, so a
    deletion cannot start between this check and the commit of the new records.
    """
    stmt = _QUEUE_LOCKED if lock else _QUEUE
    params = {"queue_id": queue_id, "organization_id": organization_id}
    row = (await conn.execute(stmt, params)).first()
    if row is None:
        raise NotFound(f"Queue {queue_id} not found.")
    if row.status != ACTIVE:
        raise ConflictStatus(
            f"Queue {queue_id} does not accept documents while its status is {row.status}."
        )
    settings = row.settings if isinstance(row.settings, dict) else {}
    return QueueForIntake(row.id, row.organization_id, row.schema_id, row.status, settings)


async def find_identical(
    conn: AsyncConnection, organization_id: int, sha256: str, file_name: str, *, lock: bool = False
) -> int | None:
    """The id of a document of the organization with these bytes and this name, if any.

    `lock` (PostgreSQL, inside the creating transaction) serialises concurrent uploads of the
    same bytes, so two `reject_identical` requests racing each other cannot both get in.
    """
    if lock and conn.dialect.name == "postgresql":
        # Advisory lock keyed by the content: only requests with the same bytes wait.
        await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(int(sha256[:15], 16))))
    params = {"organization_id": organization_id, "sha256": sha256, "name": file_name}
    return (await conn.execute(_IDENTICAL, params)).scalar()


async def _insert(conn: AsyncConnection, table: sa.Table, values: dict[str, Any]) -> int:
    result = await conn.execute(_INSERTS[table.name], values)
    return int(result.scalar_one())


async def accept_files(conn: AsyncConnection, submission: Submission) -> Accepted:
    """Create every record of one submission in the caller's transaction (raises ConflictStatus
    when the queue is not `active`). The caller wakes the workers after the commit."""
    queue = await queue_for_intake(
        conn, submission.organization_id, submission.queue_id, lock=conn.dialect.name != "sqlite"
    )
    now = utcnow()
    common = {
        "organization_id": submission.organization_id,
        "creator_id": submission.creator_id,
        "email_id": submission.email_id,
    }
    upload_id = await _insert(
        conn,
        t.uploads,
        {
            **common,
            "queue_id": queue.id,
            "metadata": submission.metadata,
            "values": submission.rir_values,
            "created_at": now,
        },
    )
    documents: list[tuple[int, int | None]] = []
    for stored in submission.files:
        document_id = await _insert(
            conn,
            t.documents,
            {
                **common,
                "upload_id": upload_id,
                "s3_name": stored.blob_key,
                "sha256": stored.blob_key,
                "size": stored.size,
                "mime_type": stored.mime_type,
                "original_file_name": stored.original_file_name,
                "attachment_status": stored.attachment_status,
                "metadata": {},
                "arrived_at": now,
                "created_at": now,
            },
        )
        annotation_id = None
        if stored.attachment_status is None:
            annotation_id = await _create_annotation(
                conn, submission, queue, stored, document_id, upload_id
            )
        documents.append((document_id, annotation_id))
    task_id = None
    if submission.task_type is not None:
        task_id = await _insert(
            conn,
            t.tasks,
            {
                **common,
                "type": submission.task_type,
                "status": "running",
                "upload_id": upload_id,
                "content": {},
                "created_at": now,
                "expires_at": now + TASK_LIFETIME,
            },
        )
    return Accepted(upload_id=upload_id, task_id=task_id, documents=documents)


async def _create_annotation(
    conn: AsyncConnection,
    submission: Submission,
    queue: QueueForIntake,
    stored: StoredFile,
    document_id: int,
    upload_id: int,
) -> int:
    now = utcnow()
    annotation_id = await _insert(
        conn,
        t.annotations,
        {
            "organization_id": submission.organization_id,
            "queue_id": queue.id,
            "document_id": document_id,
            "schema_id": queue.schema_id,
            "upload_id": upload_id,
            "email_id": submission.email_id,
            "creator_id": submission.creator_id,
            "status": IMPORTING,
            "metadata": submission.metadata,
            "content": [],
            "messages": [],
            "pages": [],
            "arrived_at": now,
            "created_at": now,
        },
    )
    payload: dict[str, Any] = {"rir_values": submission.rir_values}
    reason = rejection_reason(stored.mime_type, queue.settings)
    if reason is not None:
        payload["rejected_reason"] = reason
    await _insert(
        conn,
        t.jobs,
        {
            "kind": IMPORT_JOB,
            "annotation_id": annotation_id,
            "payload": payload,
            "status": "queued",
            "attempts": 0,
            "run_after": now,
            "created_at": now,
        },
    )
    return annotation_id
