"""The one place where received files become records: queue gating, and the single transaction
that creates upload, documents, annotations (`importing`), task and pipeline jobs.

Both receivers call this. HTTP: stream each file into a `BlobWriter`, `commit()` it (fsynced),
then `accept_files` inside `db.transaction()`, then answer. SMTP: spool + parse the message, store
the raw message and each attachment as blobs, then create the email record and call
`accept_files` in the same transaction, then answer 250.

OWNER: HTTP upload issue (#3). The SMTP issue (#4) calls it with `email_id` set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection


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


async def accept_files(conn: AsyncConnection, submission: Submission) -> Accepted:
    """Create every record of one submission in the caller's transaction (raises ConflictStatus
    when the queue is not `active`). The caller wakes the workers after the commit."""
    raise NotImplementedError
