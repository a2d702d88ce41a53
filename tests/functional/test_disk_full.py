"""A full disk refuses cleanly: HTTP 507 and SMTP 452 (the sender retries later), and nothing
stays behind (no record, no blob, no temp file). The data directory is a real, tiny tmpfs
(mounting needs root; the test is skipped otherwise)."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from postroom.db import tables as t
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, PG_URL, Api, RunningServer
from tests.smtp_support import inbox_address, message, pdf_bytes, rows, send
from tests.upload_helpers import form

PAGE = 4096


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs, unmounted at the end."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int = 0) -> Path:
    """Fill the filesystem with one file, then give back `leave` bytes (whole pages)."""
    filler = disk / "filler"
    chunk = b"\0" * (64 * 1024)
    with open(filler, "wb", buffering=0) as handle:
        for size in (64 * 1024, PAGE):
            block = chunk[:size]
            with contextlib.suppress(OSError):
                while handle.write(block):
                    pass
    written = filler.stat().st_size
    os.truncate(filler, max(0, written - leave))
    return filler


def leftovers(data_dir: Path) -> list[str]:
    """Files in the blob store and its temp dir."""
    found = [p.name for p in (data_dir / "tmp").iterdir()]
    found += [p.name for p in (data_dir / "blobs").rglob("*") if p.is_file()]
    return found


async def _start(server_factory: Any, http: Any, disk: Path) -> tuple[RunningServer, Api]:
    server: RunningServer = await server_factory(POSTROOM_STORAGE_DATA_DIR=str(disk / "data"))
    admin = await Api(http, server.base, {}).login(ADMIN_USER, ADMIN_PASSWORD)
    return server, admin


async def _nothing_recorded(server: RunningServer) -> None:
    for table in (t.documents, t.annotations, t.uploads, t.emails):
        assert await rows(server, table) == [], table.name


async def test_full_disk_is_507_and_452_leaving_nothing(
    server_factory: Any, http: Any, tiny_disk: Path
) -> None:
    """An upload (multipart and raw), a document and a mail larger than the free space: 507 /
    452 4.3.1; no record, no blob, no temp file; with space again the same upload works."""
    server, admin = await _start(server_factory, http, tiny_disk)
    inbox = await inbox_address(server)
    before = leftovers(server.data_dir)
    filler = fill(tiny_disk, leave=16 * PAGE)
    big = pdf_bytes("x" * (600 * 1024))
    status, body = await admin.post("/uploads?queue=1", data=form([("big.pdf", big)]))
    assert status == 507 and body["code"] == "insufficient_storage", body
    async with admin.session.post(
        admin.url("/queues/1/upload/raw.pdf"), data=big, headers=admin.headers
    ) as response:
        assert response.status == 507
    status, body = await admin.post("/documents", data=form([("big.pdf", big)]))
    assert status == 507, body
    mail = message(inbox, attachments=[("big.pdf", big, "application/pdf")])
    with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
        await send(server, mail)
    assert refused.value.code == 452 and refused.value.message.startswith("4.3.1 ")
    await _nothing_recorded(server)
    assert leftovers(server.data_dir) == before
    filler.unlink()
    status, body = await admin.post("/uploads?queue=1", data=form([("big.pdf", big)]))
    assert status == 202, body


@pytest.mark.skipif(bool(PG_URL), reason="the PostgreSQL database is not on the tiny disk")
async def test_database_full_at_commit_is_507_and_removes_the_blob(
    server_factory: Any, http: Any, tiny_disk: Path
) -> None:
    """Room for the file but not for the SQLite commit: 507, and the blob just written is
    removed again (no orphan), nothing recorded."""
    server, admin = await _start(server_factory, http, tiny_disk)
    before = leftovers(server.data_dir)
    small = pdf_bytes("y" * 3000)
    pages = -(-len(small) // PAGE)
    fill(tiny_disk, leave=pages * PAGE)
    status, body = await admin.post("/uploads?queue=1", data=form([("small.pdf", small)]))
    assert status == 507 and body["code"] == "insufficient_storage", body
    await _nothing_recorded(server)
    assert leftovers(server.data_dir) == before


def test_fill_leaves_what_it_says(tiny_disk: Path) -> None:
    """The helper itself: after fill(leave=n pages) exactly n pages can still be written."""
    fill(tiny_disk, leave=2 * PAGE)
    probe = tiny_disk / "probe"
    with open(probe, "wb", buffering=0) as handle:
        assert handle.write(b"\0" * 2 * PAGE) == 2 * PAGE
    with pytest.raises(OSError) as full, open(tiny_disk / "more", "wb", buffering=0) as handle:
        handle.write(b"\0" * PAGE)
    assert full.value.errno == errno.ENOSPC
