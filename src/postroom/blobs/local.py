"""Content-addressed blob store on local disk (the bytes of documents and raw emails).

Keys are sha256 hex digests; a blob lives at `<data_dir>/blobs/<k[:2]>/<k>`. The 256 fan-out
directories are made once, when the store opens: a new blob then costs one file creation, its
rename and one directory fsync, not also a directory creation and its parent's fsync per blob
(on ext4 those cost more than the small file's own write). Writes are durable before anyone is
told about them: stream into a temp file in the same filesystem, fsync it, rename it into place,
fsync the directory (the order of docs/MEASURED.md). The same bytes are stored once. A crash can
leave an orphan temp file or an unreferenced blob, never a record without bytes; `sweep_temp`
clears temp files at start-up.

`BlobStore` is the interface an S3-compatible store would implement; `LocalBlobStore` is the one
Postroom ships.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import BinaryIO, Protocol

import aiofiles
import aiofiles.os

CHUNK = 256 * 1024
# Bytes a writer keeps in memory before it opens its temp file (one chunk).
BUFFER_BYTES = 256 * 1024


class BlobStore(Protocol):
    def open_writer(self) -> BlobWriter: ...

    def path_of(self, key: str) -> Path: ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None: ...


class BlobWriter:
    """Streams bytes into a temp file, hashing as they come; `commit` makes them a durable blob.

    The first BUFFER_BYTES stay in memory: a small file (most uploads) is created, written,
    fsynced and renamed in one worker-thread call at `commit`, instead of a thread round trip
    per operation, and a refused one never touches the disk. Larger files stream to the temp
    file from the second chunk on, hashed in the same worker thread (hashlib releases the GIL).
    """

    def __init__(self, store: LocalBlobStore) -> None:
        self._store = store
        self._temp = store.tmp_dir / f"{secrets.token_hex(16)}.part"
        self._file: BinaryIO | None = None
        self._pending = bytearray()  # bytes not yet in the temp file
        # A cancelled caller may abort while a write still runs in a worker thread: the lock
        # and `_aborted` keep that write from re-creating the temp file after its removal.
        self._lock = threading.Lock()
        self._aborted = False
        self._sha = hashlib.sha256()
        self.size = 0
        # Set by `commit` when this writer created the blob (not when the same bytes were
        # already stored): the blob's mtime then, so `LocalBlobStore.forget` can undo it.
        self.created_ns: int | None = None
        self.head = b""  # the first 8 KiB, for type sniffing without reading the file again

    async def write(self, data: bytes) -> None:
        if len(self.head) < 8192:
            self.head += data[: 8192 - len(self.head)]
        self.size += len(data)
        if self._file is None and len(self._pending) + len(data) <= BUFFER_BYTES:
            self._sha.update(data)
            self._pending += data
            return
        await asyncio.to_thread(self._write_through, data)

    def _write_through(self, data: bytes) -> None:
        with self._lock:
            if self._aborted:
                raise OSError("blob writer aborted")
            if self._file is None:
                self._file = open(self._temp, "wb")  # noqa: SIM115 - closed by commit/abort
            if self._pending:
                self._file.write(self._pending)
                self._pending = bytearray()
            self._sha.update(data)
            self._file.write(data)

    @property
    def key(self) -> str:
        return self._sha.hexdigest()

    async def commit(self) -> str:
        """fsync + rename into place + fsync the directory; returns the blob key."""
        return await asyncio.to_thread(self.commit_blocking)

    def commit_blocking(self) -> str:
        """`commit` for a caller already in a worker thread (blocks on disk I/O)."""
        if self._file is None:
            self._file = open(self._temp, "wb")  # noqa: SIM115 - closed below
        try:
            if self._pending:
                self._file.write(self._pending)
                self._pending = bytearray()
            self._file.flush()
            os.fsync(self._file.fileno())
        finally:
            self._file.close()
        key = self.key
        self.created_ns = self._store.place(self._temp, key)
        return key

    def read_blocking(self) -> bytes:
        """Every byte written so far, before `commit` (a worker thread: reads the temp file)."""
        with self._lock:
            if self._aborted:
                raise OSError("blob writer aborted")
            if self._file is None:
                return bytes(self._pending)
            self._file.flush()
            return self._temp.read_bytes() + bytes(self._pending)

    async def abort(self) -> None:
        self._pending = bytearray()
        await asyncio.to_thread(self._abort_blocking)

    def _abort_blocking(self) -> None:
        with self._lock:
            self._aborted = True
            if self._file is not None:
                self._file.close()
            with contextlib.suppress(FileNotFoundError):
                os.remove(self._temp)

    async def __aenter__(self) -> BlobWriter:
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            await self.abort()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# `place`'s record of a blob stored again by another writer (never an mtime).
RECLAIMED = -1
# Claims remembered; a request in flight longer than this many placements keeps its orphan.
MAX_CLAIMS = 16384


class LocalBlobStore:
    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "blobs"
        self.tmp_dir = data_dir / "tmp"
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        made = False
        for prefix in range(256):
            fan_out = self.root / f"{prefix:02x}"
            if not fan_out.is_dir():
                fan_out.mkdir(exist_ok=True)
                made = True
        if made:
            _fsync_dir(self.root)
        # Blobs this process created lately, by key: their mtime at creation, or RECLAIMED once
        # another writer stored the same bytes. `place` and `forget` decide under `_claims_lock`,
        # so a failed request never removes a blob a concurrent request has just relied on.
        self._claims_lock = threading.Lock()
        self._claims: OrderedDict[str, int] = OrderedDict()

    def place(self, temp: Path, key: str) -> int | None:
        """Move the fsynced `temp` into place as blob `key`; the new blob's mtime (ns), or None
        when the same bytes were stored already (blocking: run in a worker thread)."""
        final = self.path_of(key)
        with self._claims_lock:
            if final.exists():
                # Same content already stored (content addressing): keep the old one. A fresh
                # mtime marks it claimed again, so the orphan sweep (which only takes blobs idle
                # for an hour) and another process's `forget` leave it alone.
                with contextlib.suppress(FileNotFoundError):
                    os.utime(final)
                self._claim(key, RECLAIMED)
                created_ns = None
            else:
                os.replace(temp, final)
                created_ns = os.stat(final).st_mtime_ns
                self._claim(key, created_ns)
        temp.unlink(missing_ok=True)
        # The rename (or the earlier writer's) is durable only once the directory entry is on
        # disk: the earlier writer may not have fsynced it yet, and our record will rely on it.
        _fsync_dir(final.parent)
        return created_ns

    def _claim(self, key: str, value: int) -> None:
        self._claims[key] = value
        self._claims.move_to_end(key)
        while len(self._claims) > MAX_CLAIMS:  # forgotten claims only keep an orphan (swept)
            self._claims.popitem(last=False)

    def open_writer(self) -> BlobWriter:
        return BlobWriter(self)

    def path_of(self, key: str) -> Path:
        if len(key) != 64 or not all(c in "0123456789abcdef" for c in key):
            raise ValueError("not a blob key")
        return self.root / key[:2] / key

    async def exists(self, key: str) -> bool:
        return bool(await aiofiles.os.path.exists(self.path_of(key)))

    async def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await aiofiles.os.remove(self.path_of(key))

    def forget(self, key: str, created_ns: int) -> None:
        """Remove a blob this process just created for records that then failed to commit,
        unless it was claimed again since: by a writer of this process (`place` recorded it) or
        of another one (it touched the mtime). When in doubt the blob stays, an orphan the sweep
        removes later; a blob someone relies on is never removed."""
        path = self.path_of(key)
        with self._claims_lock, contextlib.suppress(FileNotFoundError):
            if self._claims.get(key) != created_ns or os.stat(path).st_mtime_ns != created_ns:
                return
            path.unlink()
            del self._claims[key]

    def idle_keys(self, idle_s: float) -> list[str]:
        """Keys of blobs not written or reused for `idle_s` seconds (blocking: run in a thread)."""
        cutoff = time.time() - idle_s
        keys = []
        for fan_out in self.root.iterdir():
            if not fan_out.is_dir():
                continue
            with os.scandir(fan_out) as entries:
                for entry in entries:
                    if len(entry.name) == 64 and entry.stat().st_mtime < cutoff:
                        keys.append(entry.name)
        return keys

    def sweep_temp(self) -> int:
        """Remove temp files left by a crash (called at start-up, before serving)."""
        removed = 0
        for entry in self.tmp_dir.iterdir():
            if entry.suffix == ".part":
                entry.unlink(missing_ok=True)
                removed += 1
        return removed
