"""The one place where stored files become records: the queue-state rule, the file-type rule, and
the records of one submission (upload, documents, annotations in `importing`, task, jobs).

Every channel calls these inside its unit of the group commit (`db.commits`), after the files
are durable blobs (`intake.storing`):

- `admit`: the queue-state rule. A queue takes documents only while `active`; the queue row is
  share-locked (PostgreSQL) until the commit, so a deletion cannot start in between.
  `check_uploader` states the same rule early, before an upload's body is read.
- `judge`: the file-type rule (`intake.sniff.rejection_reason`), applied once per file. A file
  whose type the queue refuses still gets its document; an upload's gets its annotation and job
  too, the job's payload carrying `rejected_reason`, and the pipeline ends that annotation
  `failed_import` with the reason as its message; an e-mail's is kept as a document only
  (`attachment_status` `unsupported_mime_type`). An archive the queue accepts stands for its
  members.
- `accept_files`: the records. A file with `attachment_status` set gets a document only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from typing_extensions import TypedDict

from postroom.clock import utcnow
from postroom.db import tables as t
from postroom.db.dialect import advisory_lock
from postroom.domain.access import Actor
from postroom.domain.uploads import visible_by_origin
from postroom.errors import Conflict, ConflictStatus, NotFound
from postroom.intake.sniff import rejection_reason
from postroom.intake.storing import StoredFile
from postroom.runtime import Runtime
from postroom.status import (
    AnnotationStatus,
    AttachmentStatus,
    JobKind,
    JobStatus,
    QueueStatus,
    TaskStatus,
)
from postroom.urls import Urls

# How long a task stays readable (Rossum deletes expired tasks periodically).
TASK_LIFETIME = timedelta(days=7)


@dataclass(frozen=True)
class KeptFile:
    """A stored file of a submission; an expanded archive also has its `members`."""

    file: StoredFile
    members: list[StoredFile] | None = None


class Origin(TypedDict):
    """Where intake records come from; each of them carries it."""

    organization_id: int
    creator_id: int | None
    email_id: int | None


@dataclass(frozen=True)
class Submission:
    """What one request or one message brings to one admitted queue."""

    organization_id: int
    creator_id: int | None
    files: list[StoredFile]  # judged already (`judge`)
    metadata: dict[str, Any] = field(default_factory=dict)  # → annotation.metadata
    # rir_field_name → value, applied by the pipeline's content step to datapoints whose
    # `rir_field_names` contain the key: "upload:note", "email_header:subject", ...
    rir_values: dict[str, Any] = field(default_factory=dict)
    email_id: int | None = None
    task_type: str | None = None  # None: no task (POST /queues/{id}/upload, SMTP mail)

    @property
    def origin(self) -> Origin:
        return {
            "organization_id": self.organization_id,
            "creator_id": self.creator_id,
            "email_id": self.email_id,
        }


@dataclass(frozen=True)
class Accepted:
    upload_id: int
    task_id: int | None
    # (document_id, annotation_id or None when the file was filtered)
    documents: list[tuple[int, int | None]]


@dataclass(frozen=True)
class QueueForIntake:
    id: int
    organization_id: int
    schema_id: int
    status: str
    settings: dict[str, Any]


# Built once: intake runs these for every file, and a statement built per call costs more
# Python time (construction, cache key) than SQLite takes to run it.
_Q = t.queues.c
_QUEUE = sa.select(_Q.id, _Q.organization_id, _Q.schema_id, _Q.status, _Q.settings).where(
    _Q.id == sa.bindparam("queue_id"), _Q.organization_id == sa.bindparam("organization_id")
)
_QUEUE_LOCKED = _QUEUE.with_for_update(read=True)
_ASSIGNED_QUEUE = _QUEUE.where(
    _Q.id.in_(
        sa.select(t.queue_users.c.queue_id).where(
            t.queue_users.c.user_id == sa.bindparam("user_id")
        )
    )
)
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


def takes_documents(queue_status: str) -> bool:
    """The queue-state rule: only an `active` queue takes documents."""
    return queue_status == QueueStatus.ACTIVE


def require_active(queue_id: int, status: str) -> None:
    """409 naming the status unless the queue takes documents (`takes_documents`)."""
    if not takes_documents(status):
        raise ConflictStatus(
            f"Queue {queue_id} does not accept documents while its status is {status}."
        )


async def _find_queue(
    conn: AsyncConnection, stmt: sa.Select[Any], params: dict[str, Any]
) -> QueueForIntake:
    row = (await conn.execute(stmt, params)).first()
    if row is None:
        raise NotFound(f"Queue {params['queue_id']} not found.")
    settings = row.settings if isinstance(row.settings, dict) else {}
    return QueueForIntake(row.id, row.organization_id, row.schema_id, row.status, settings)


async def admit(conn: AsyncConnection, organization_id: int, queue_id: int) -> QueueForIntake:
    """The queue's intake facts inside the creating transaction: NotFound outside the
    organization, ConflictStatus unless active. The share lock (PostgreSQL) holds until commit."""
    params = {"queue_id": queue_id, "organization_id": organization_id}
    queue = await _find_queue(conn, _QUEUE_LOCKED, params)
    require_active(queue.id, queue.status)
    return queue


async def check_uploader(rt: Runtime, who: Actor, queue_id: int) -> None:
    """404 unknown or invisible queue, 403 a viewer, 409 a queue that is not active.

    Checked before the body is read, so a refused upload costs the client no transfer; the
    transaction checks the status again (`admit`).
    """
    stmt = _QUEUE if who.sees_all_queues else _ASSIGNED_QUEUE
    params = {"queue_id": queue_id, "organization_id": who.organization_id, "user_id": who.user_id}
    async with rt.db.reading() as conn:
        queue = await _find_queue(conn, stmt, params)
    who.require_importer()
    require_active(queue.id, queue.status)


def judge(
    kept: Sequence[KeptFile], queue_settings: dict[str, Any], *, refused_as_documents: bool
) -> list[StoredFile]:
    """The files one queue gets, each judged by the file-type rule (see the module docstring)."""

    def judged(stored: StoredFile) -> StoredFile:
        if stored.attachment_status is not None:
            return stored
        reason = rejection_reason(stored.mime_type, queue_settings)
        if reason is None:
            return stored
        if refused_as_documents:
            return replace(stored, attachment_status=AttachmentStatus.UNSUPPORTED_MIME_TYPE)
        return replace(stored, rejected_reason=reason)

    files: list[StoredFile] = []
    for item in kept:
        if item.members is None or rejection_reason(item.file.mime_type, queue_settings):
            files.append(judged(item.file))
        else:
            files.extend(judged(member) for member in item.members)
    return files


async def refuse_identical(
    conn: AsyncConnection, urls: Urls, who: Actor, file: tuple[str, str], *, lock: bool
) -> None:
    """409 when a document of the organization has these bytes and this name (`file`: sha256,
    name). `lock` (PostgreSQL, inside the creating transaction) serialises concurrent uploads of
    the same bytes, so two `reject_identical` requests racing each other cannot both get in.

    The answer names the existing document only when the uploader may see it: its URL would
    otherwise reveal a document of a queue they are not assigned to."""
    sha256, name = file
    if lock:
        # Keyed by the content: only requests with the same bytes wait.
        await advisory_lock(conn, int(sha256[:15], 16))
    params = {"organization_id": who.organization_id, "sha256": sha256, "name": name}
    existing = (await conn.execute(_IDENTICAL, params)).scalar()
    if existing is None:
        return
    detail = f"reject_identical: a document with the same content and file name {name!r} "
    visible = sa.select(t.documents.c.id).where(
        t.documents.c.id == existing, visible_by_origin(who, t.documents)
    )
    if (await conn.execute(visible)).first() is None:
        raise Conflict(detail + "already exists.")
    raise Conflict(detail + f"already exists ({urls.to('documents', existing)}).")


async def _insert(conn: AsyncConnection, table: sa.Table, values: dict[str, Any]) -> int:
    result = await conn.execute(_INSERTS[table.name], values)
    return int(result.scalar_one())


async def insert_document(
    conn: AsyncConnection,
    stored: StoredFile,
    origin: Origin,
    now: datetime,
    *,
    upload_id: int | None = None,
    parent_id: int | None = None,
    metadata: dict[str, Any] | None = None,
) -> int:
    """The document of a stored file."""
    values = {
        **origin,
        "upload_id": upload_id,
        "parent_id": parent_id,
        "s3_name": stored.blob_key,
        "sha256": stored.blob_key,
        "size": stored.size,
        "mime_type": stored.mime_type,
        "original_file_name": stored.original_file_name,
        "attachment_status": stored.attachment_status,
        "metadata": metadata or {},
        "arrived_at": now,
        "created_at": now,
    }
    return await _insert(conn, t.documents, values)


async def insert_task(
    conn: AsyncConnection,
    task_type: str,
    origin: Origin,
    *,
    upload_id: int | None = None,
    status: str = TaskStatus.RUNNING,
) -> int:
    """A task following the import of an upload (or of an e-mail)."""
    now = utcnow()
    values = {
        **origin,
        "type": task_type,
        "status": status,
        "upload_id": upload_id,
        "content": {},
        "created_at": now,
        "expires_at": now + TASK_LIFETIME,
    }
    return await _insert(conn, t.tasks, values)


async def accept_files(
    conn: AsyncConnection, submission: Submission, queue: QueueForIntake
) -> Accepted:
    """Create every record of one submission to an admitted queue in the caller's transaction.
    The caller wakes the workers after the commit."""
    now = utcnow()
    origin = submission.origin
    upload_id = await _insert(
        conn,
        t.uploads,
        {
            **origin,
            "queue_id": queue.id,
            "metadata": submission.metadata,
            "values": submission.rir_values,
            "created_at": now,
        },
    )
    documents: list[tuple[int, int | None]] = []
    for stored in submission.files:
        document_id = await insert_document(conn, stored, origin, now, upload_id=upload_id)
        annotation_id = None
        if stored.attachment_status is None:
            annotation_id = await _create_annotation(
                conn, submission, queue, stored, document_id, upload_id
            )
        documents.append((document_id, annotation_id))
    task_id = None
    if submission.task_type is not None:
        task_id = await insert_task(conn, submission.task_type, origin, upload_id=upload_id)
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
            "status": AnnotationStatus.IMPORTING,
            "metadata": submission.metadata,
            "content": [],
            "messages": [],
            "pages": [],
            "arrived_at": now,
            "created_at": now,
        },
    )
    payload: dict[str, Any] = {"rir_values": submission.rir_values}
    if stored.rejected_reason is not None:
        payload["rejected_reason"] = stored.rejected_reason
    await _insert(
        conn,
        t.jobs,
        {
            "kind": JobKind.IMPORT,
            "annotation_id": annotation_id,
            "payload": payload,
            "status": JobStatus.QUEUED,
            "attempts": 0,
            "run_after": now,
            "created_at": now,
        },
    )
    return annotation_id
