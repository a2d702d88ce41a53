"""Content-addressed blob store on local disk (the bytes of documents and raw emails).

Keys are sha256 hex digests; a blob lives at `<data_dir>/blobs/<k[:2]>/<k[2:4]>/<k>`. Writes are
durable before anyone is told about them: stream into a temp file in the same filesystem, fsync
it, rename it into place, fsync the directory (the order of notes/measured-facts.md). The same
bytes are stored once. A crash can leave an orphan temp file or an unreferenced blob, never a
record without bytes; `sweep_temp` clears temp files at start-up.

`BlobStore` is the interface an S3-compatible store would implement; `LocalBlobStore` is the one
Postroom ships.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import aiofiles
import aiofiles.os

CHUNK = 256 * 1024


class BlobStore(Protocol):
    def open_writer(self) -> BlobWriter: ...

    async def read_chunks(self, key: str, chunk_size: int = CHUNK) -> AsyncIterator[bytes]: ...

    def path_of(self, key: str) -> Path: ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None: ...


class BlobWriter:
    """Streams bytes into a temp file, hashing as they come; `commit` makes them a durable blob."""

    def __init__(self, store: LocalBlobStore) -> None:
        self._store = store
        self._temp = store.tmp_dir / f"{secrets.token_hex(16)}.part"
        self._file: aiofiles.threadpool.binary.AsyncBufferedIOBase | None = None
        self._sha = hashlib.sha256()
        self.size = 0
        self.head = b""  # the first 8 KiB, for type sniffing without reading the file again

    async def write(self, data: bytes) -> None:
        if self._file is None:
            self._file = await aiofiles.open(self._temp, "wb")
        if len(self.head) < 8192:
            self.head += data[: 8192 - len(self.head)]
        self._sha.update(data)
        self.size += len(data)
        await self._file.write(data)

    @property
    def key(self) -> str:
        return self._sha.hexdigest()

    async def commit(self) -> str:
        """fsync + rename into place + fsync the directory; returns the blob key."""
        if self._file is None:
            self._file = await aiofiles.open(self._temp, "wb")
        await self._file.flush()
        await aiofiles.os.wrap(os.fsync)(self._file.fileno())
        await self._file.close()
        key = self.key
        final = self._store.path_of(key)
        await aiofiles.os.wrap(_place)(self._temp, final)
        return key

    async def abort(self) -> None:
        if self._file is not None:
            await self._file.close()
        with contextlib.suppress(FileNotFoundError):
            await aiofiles.os.remove(self._temp)

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


def _place(temp: Path, final: Path) -> None:
    if final.exists():
        # Same content already stored (content addressing): keep the old one.
        temp.unlink(missing_ok=True)
        return
    if not final.parent.is_dir():
        final.parent.mkdir(parents=True, exist_ok=True)
        _fsync_dir(final.parent.parent)
    os.replace(temp, final)
    # The rename is durable only once the directory entry is on disk.
    _fsync_dir(final.parent)


class LocalBlobStore:
    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "blobs"
        self.tmp_dir = data_dir / "tmp"
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def open_writer(self) -> BlobWriter:
        return BlobWriter(self)

    def path_of(self, key: str) -> Path:
        if len(key) != 64 or not all(c in "0123456789abcdef" for c in key):
            raise ValueError("not a blob key")
        return self.root / key[:2] / key[2:4] / key

    async def exists(self, key: str) -> bool:
        return await aiofiles.os.path.exists(self.path_of(key))

    async def read_chunks(self, key: str, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
        async with aiofiles.open(self.path_of(key), "rb") as f:
            while chunk := await f.read(chunk_size):
                yield chunk

    async def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await aiofiles.os.remove(self.path_of(key))

    def sweep_temp(self) -> int:
        """Remove temp files left by a crash (called at start-up, before serving)."""
        removed = 0
        for entry in self.tmp_dir.iterdir():
            if entry.suffix == ".part":
                entry.unlink(missing_ok=True)
                removed += 1
        return removed
