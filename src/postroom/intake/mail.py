"""Mail intake up to the commit: a raw message → its parsed fields and its files, durable.

Order (docs/MEASURED.md): the raw message is already written when the intake gets it (SMTP:
spooled during DATA; `POST /emails/import`: streamed from the request body) and is made durable
while the message is parsed off the loop; its attachments are written as durable blobs
(`intake.storing`), several at once. Then the records are written (`intake.mail_records`), and
only after that commit may the caller answer 250 / 202. A failure anywhere raises; nothing is
half-created (a blob without a record is an orphan the store tolerates).

Parsing holds a whole message in memory (the `email` package), so parses run under a byte
budget: several large messages in flight wait for each other instead of exhausting memory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from postroom import metrics
from postroom.blobs.local import LocalBlobStore
from postroom.intake.accept import KeptFile
from postroom.intake.mail_records import Delivered, RawMessage
from postroom.intake.mime import SCAN_FROM_BYTES, Found, ParsedMail, parse_message
from postroom.intake.storing import StoredFile, forget_new, store_bytes

# Memory a parse holds at its peak: the `email` package (small messages) about 8x the raw size;
# the scanner of large ones about its decoded files plus one slice (mimestream).
_SMALL_PARSE_FACTOR = 8
_LARGE_PARSE_FACTOR = 2
_PARSE_INLINE_BYTES = 64 * 1024  # smaller messages are parsed on the loop (bounded: < 1 ms)
_PARALLEL_WRITES = 8  # attachment blobs written (and fsynced) at once per message


class ByteBudget:
    """A semaphore counted in bytes; one request larger than the budget runs alone."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._used = 0
        self._changed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def reserve(self, amount: int) -> AsyncIterator[None]:
        amount = min(amount, self.capacity)
        async with self._changed:
            await self._changed.wait_for(lambda: self._used + amount <= self.capacity)
            self._used += amount
        try:
            yield
        finally:
            async with self._changed:
                self._used -= amount
                self._changed.notify_all()


def _parse_cost(size: int) -> int:
    factor = _SMALL_PARSE_FACTOR if size <= SCAN_FROM_BYTES else _LARGE_PARSE_FACTOR
    return size * factor


async def durable_parts(
    blobs: LocalBlobStore, budget: ByteBudget, raw: RawMessage
) -> tuple[ParsedMail, list[KeptFile]]:
    """Parse the message and store its files; the raw message is made durable meanwhile.

    fsyncs issued together cost about one (the filesystem journal commits them at once), so the
    raw message's commit runs beside the parse and the attachments' commits.
    """
    commit = None if raw.pending is None else asyncio.ensure_future(raw.pending.commit())
    made: list[StoredFile] = []  # blobs this message created, removed again if it fails
    try:
        if raw.data is None and commit is not None:
            await commit  # the parser reads the stored file
        source: Path | bytes = raw.data if raw.data is not None else blobs.path_of(raw.key)
        async with budget.reserve(_parse_cost(raw.size)):
            if isinstance(source, bytes) and len(source) <= _PARSE_INLINE_BYTES:
                # Well under a millisecond: cheaper than a worker thread fighting the loop for
                # the GIL.
                parsed = parse_message(source)
            else:
                parsed = await asyncio.to_thread(parse_message, source)
            limit = asyncio.Semaphore(_PARALLEL_WRITES)
            keeping = [_keep(blobs, f, limit, made) for f in parsed.files]
            results = await asyncio.gather(*keeping, return_exceptions=True)
            kept = [r for r in results if isinstance(r, KeptFile)]
            failed = [r for r in results if isinstance(r, BaseException)]
            if failed:
                raise failed[0]
        if commit is not None:
            await commit
    except BaseException:
        await forget_new(blobs, made)
        if commit is not None:
            await asyncio.wait([commit])
            if commit.cancelled() or commit.exception() is not None:
                assert raw.pending is not None
                await raw.pending.abort()
            else:
                await forget_raw(blobs, raw)
        raise
    return parsed, kept


async def forget_raw(blobs: LocalBlobStore, raw: RawMessage) -> None:
    """Remove the raw message's blob when this delivery created it and then failed."""
    created_ns = raw.pending.created_ns if raw.pending is not None else None
    if created_ns is not None:
        await forget_new(blobs, [StoredFile(raw.key, raw.size, "", "", created_ns=created_ns)])


def stored_files(kept: list[KeptFile]) -> list[StoredFile]:
    return [k.file for k in kept] + [m for k in kept for m in (k.members or [])]


async def _keep(
    blobs: LocalBlobStore, found: Found, limit: asyncio.Semaphore, made: list[StoredFile]
) -> KeptFile:
    stored = await _store(blobs, found, limit, made)
    members = None
    if found.members is not None:
        storing = (_store(blobs, m, limit, made) for m in found.members)
        members = list(await asyncio.gather(*storing))
    return KeptFile(stored, members)


async def _store(
    blobs: LocalBlobStore, found: Found, limit: asyncio.Semaphore, made: list[StoredFile]
) -> StoredFile:
    async with limit:
        stored = await store_bytes(blobs, found.data, found.name, found.status)
    made.append(stored)
    found.data = b""  # durable now: let the memory go before the transaction
    return stored


def count_delivery(kept: list[KeptFile], delivered: Delivered) -> None:
    """The SMTP metrics of one delivered message."""
    if delivered.email_ids:
        metrics.SMTP_MESSAGES.labels(outcome="accepted", reason="stored").inc()
    elif delivered.duplicate_ids:
        metrics.SMTP_MESSAGES.labels(outcome="accepted", reason="duplicate").inc()
    stored = stored_files(kept)
    metrics.UPLOADED_FILES.labels(channel="smtp").inc(len(stored) * len(delivered.email_ids))
    metrics.UPLOAD_BYTES.labels(channel="smtp").inc(sum(s.size for s in stored))
