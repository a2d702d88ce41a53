"""A failed request removes only the blobs it alone relies on (a real blob store on disk)."""

from __future__ import annotations

import os
from pathlib import Path

from postroom.blobs.local import LocalBlobStore


async def _store(store: LocalBlobStore, data: bytes) -> tuple[str, int | None]:
    writer = store.open_writer()
    await writer.write(data)
    key = await writer.commit()
    return key, writer.created_ns


async def test_a_failed_request_removes_the_blob_it_created(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    key, created_ns = await _store(store, b"refused bytes")
    assert created_ns is not None
    store.forget(key, created_ns)
    assert not store.path_of(key).exists()


async def test_bytes_stored_again_meanwhile_are_kept_even_with_a_coarse_clock(
    tmp_path: Path,
) -> None:
    """Request A creates the blob, request B stores the same bytes and relies on them, then A's
    records fail. The blob stays even when the filesystem gave B's touch A's very mtime (coarse
    timestamps), which the mtime alone cannot tell apart."""
    store = LocalBlobStore(tmp_path)
    key, created_ns = await _store(store, b"the same invoice")
    assert created_ns is not None
    again, reclaimed = await _store(store, b"the same invoice")
    assert again == key and reclaimed is None
    os.utime(store.path_of(key), ns=(created_ns, created_ns))  # the same clock tick
    store.forget(key, created_ns)
    assert store.path_of(key).read_bytes() == b"the same invoice"
