"""Memory stays bounded while large uploads stream in: twenty concurrent 40 MB uploads to a real
`postroom serve` process keep its resident set under 150 MB (issue #3, "Done when")."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import PG_URL, reset_postgres
from tests.subprocess_server import ServeProcess
from tests.upload_helpers import basic, pdf_bytes

pytestmark = pytest.mark.slow

FILE_BYTES = 40_000_000  # the largest file whose multipart request fits in 40 MiB
PIECE = 256 * 1024
LIMIT_MB = 150


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def big_file(shared: bytes) -> AsyncIterator[bytes]:
    """40 MB of which only the first bytes differ per upload; the client holds one buffer."""
    yield b"%PDF-1.4\n%" + os.urandom(16)
    sent = 26
    while sent < FILE_BYTES:
        piece = shared[: min(PIECE, FILE_BYTES - sent)]
        sent += len(piece)
        yield piece


async def test_twenty_concurrent_40mb_uploads_stay_under_150mb(tmp_path: Path) -> None:
    """Peak RSS of the server while 20 clients each stream a 40 MB file stays under 150 MB."""
    if PG_URL:
        await reset_postgres(PG_URL)
    proc = ServeProcess(tmp_path / "data", POSTROOM_PIPELINE_WORKERS="0")
    proc.start()
    assert proc.proc is not None
    pid = proc.proc.pid
    shared = os.urandom(PIECE)
    url = f"{proc.base}/api/v1/uploads/big.pdf?queue=1"
    peak = 0.0
    try:
        async with aiohttp.ClientSession(headers=basic()) as session:
            # One small upload first: Basic credentials are verified (argon2) and cached once.
            async with session.post(url, data=pdf_bytes()) as response:
                assert response.status == 202

            async def upload() -> int:
                async with session.post(url, data=big_file(shared)) as response:
                    return response.status

            uploads = asyncio.gather(*(upload() for _ in range(20)))
            while not uploads.done():
                peak = max(peak, rss_mb(pid))
                await asyncio.sleep(0.05)
            assert await uploads == [202] * 20
    finally:
        proc.kill()
    assert peak < LIMIT_MB, f"peak RSS {peak:.0f} MB"
