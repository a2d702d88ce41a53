"""Received bytes → durable blobs with their type named from the bytes: the step every file of
every channel passes before any record may point at it.

A file is committed (fsync, rename, fsync of the directory) and sniffed in one worker-thread
trip; only then is it a `StoredFile`. The HTTP paths answer a failing disk (full, read-only,
gone) with a 503 the client may retry, a full one with a 507 (`storage_errors`); SMTP answers
452 when full, 451 to any other failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from postroom.blobs.local import BlobWriter, LocalBlobStore
from postroom.errors import InsufficientStorage, ServiceUnavailable
from postroom.intake.sniff import SNIFF_BYTES, sniff_mime

_WRITE_SLICE = 1024 * 1024
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


@dataclass(frozen=True)
class StoredFile:
    """A file whose bytes are already durable in the blob store."""

    blob_key: str  # sha256 hex, also the document's s3_name
    size: int
    mime_type: str  # sniffed from the bytes (intake.sniff), never the client's claim
    original_file_name: str  # as the channel named it (intake.names); never a filesystem path
    # Set when the file is kept as a document only (an e-mail attachment filtered: why).
    attachment_status: str | None = None
    # Set when the queue refuses the type but the file still gets its annotation, which the
    # pipeline ends `failed_import` saying why (the HTTP channels).
    rejected_reason: str | None = None
    # The blob's mtime when this request created it (None: the bytes were already stored).
    created_ns: int | None = None


async def forget_new(blobs: LocalBlobStore, files: Iterable[StoredFile]) -> None:
    """Remove the blobs these files created, after their records failed to commit: a refused
    or failed request leaves no file behind."""
    new = [(f.blob_key, f.created_ns) for f in files if f.created_ns is not None]

    def forget() -> None:
        for key, created_ns in new:
            with contextlib.suppress(OSError):
                blobs.forget(key, created_ns)

    if new:
        await asyncio.shield(asyncio.to_thread(forget))


@contextlib.contextmanager
def storage_errors() -> Iterator[None]:
    """A failing disk (full, read-only, gone) is a 503 the client may retry, never a 500."""
    try:
        yield
    except ConnectionError:
        raise
    except OSError as exc:
        if exc.errno in DISK_FULL:
            raise InsufficientStorage() from None
        reason = exc.strerror or type(exc).__name__
        raise ServiceUnavailable(
            f"The upload could not be stored ({reason}); try again later."
        ) from None


def _commit_and_sniff(writer: BlobWriter, blobs: LocalBlobStore) -> tuple[str, str]:
    # One worker-thread trip per file: write, fsync, rename, fsync dir, then libmagic.
    key = writer.commit_blocking()
    return key, sniff_mime(writer.head[:SNIFF_BYTES], blobs.path_of(key))


async def store(
    blobs: LocalBlobStore, writer: BlobWriter, name: str, status: str | None = None
) -> StoredFile:
    """Make the writer's bytes a durable blob and sniff their type."""
    key, mime = await asyncio.to_thread(_commit_and_sniff, writer, blobs)
    return StoredFile(key, writer.size, mime, name, status, created_ns=writer.created_ns)


async def store_bytes(
    blobs: LocalBlobStore, data: bytes, name: str, status: str | None = None
) -> StoredFile:
    """`store` for bytes held in memory (a parsed attachment)."""
    writer = blobs.open_writer()
    async with writer:
        for start in range(0, len(data), _WRITE_SLICE):
            await writer.write(data[start : start + _WRITE_SLICE])
        return await store(blobs, writer, name, status)
