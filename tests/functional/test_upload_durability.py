"""kill -9 of `postroom serve` while uploads stream in: after a restart, every upload that was
answered 201/202 has its documents, annotations and exact bytes, no temp file is left, and the
pipeline takes every annotation out of `importing`."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import PG_URL, reset_postgres
from tests.subprocess_server import ServeProcess
from tests.upload_helpers import basic, eventually, pdf_bytes

pytestmark = pytest.mark.slow


@dataclass
class Sent:
    sha256: str
    size: int
    status: int | None = None
    body: dict[str, Any] | None = None


async def slow_body(content: bytes, piece: int = 64 * 1024) -> AsyncIterator[bytes]:
    """A chunked body trickling in, so the kill finds it half-read."""
    for start in range(0, len(content), piece):
        yield content[start : start + piece]
        await asyncio.sleep(0.01)


async def keep_uploading(
    session: aiohttp.ClientSession, base: str, sent: list[Sent], stop: asyncio.Event, slow: bool
) -> None:
    while not stop.is_set():
        content = os.urandom(2 * 1024 * 1024) if slow else pdf_bytes()
        record = Sent(hashlib.sha256(content).hexdigest(), len(content))
        sent.append(record)
        url = f"{base}/api/v1/uploads/f.bin?queue=1" if slow else f"{base}/api/v1/queues/1/upload"
        data: Any = slow_body(content) if slow else content
        try:
            async with session.post(url, data=data) as response:
                record.status = response.status
                record.body = await response.json()
        except (TimeoutError, aiohttp.ClientError, ConnectionError):
            return  # the server died under us: this one was never acknowledged


async def acknowledged_uploads(proc: ServeProcess) -> list[Sent]:
    sent: list[Sent] = []
    stop = asyncio.Event()
    async with aiohttp.ClientSession(headers=basic()) as session:
        workers = [
            asyncio.create_task(keep_uploading(session, proc.base, sent, stop, slow=i < 4))
            for i in range(12)
        ]
        await eventually(
            lambda: sum(1 for s in sent if s.status in (201, 202)) >= 30, "uploads stall", 60
        )
        proc.kill()  # SIGKILL: no shutdown code runs
        stop.set()
        await asyncio.gather(*workers)
    acked = [s for s in sent if s.status in (201, 202)]
    assert len(acked) < len(sent), "no upload was in flight when the server was killed"
    return acked


async def test_acknowledged_uploads_survive_kill_9(tmp_path: Path) -> None:
    """Every 201/202 given before a SIGKILL still has its records and bytes after a restart, and
    no annotation stays importing."""
    if PG_URL:
        await reset_postgres(PG_URL)
    proc = ServeProcess(tmp_path / "data")
    proc.start()
    try:
        acked = await acknowledged_uploads(proc)
        assert proc.proc is not None and proc.proc.returncode == -signal.SIGKILL
        proc.start()
        async with aiohttp.ClientSession(headers=basic()) as session:
            token = await _login(session, proc.base)
            auth = {"Authorization": f"Bearer {token}"}
            for record in acked:
                await _check_upload(session, auth, record)
            await _wait_until_nothing_imports(session, proc.base, auth)
        assert list((tmp_path / "data" / "tmp").glob("*.part")) == []
    finally:
        proc.kill()


async def _login(session: aiohttp.ClientSession, base: str) -> str:
    from tests.conftest import ADMIN_PASSWORD, ADMIN_USER

    async with session.post(
        f"{base}/api/v1/auth/login", json={"username": ADMIN_USER, "password": ADMIN_PASSWORD}
    ) as response:
        return str((await response.json())["key"])


async def _check_upload(session: aiohttp.ClientSession, auth: dict[str, str], record: Sent) -> None:
    assert record.body is not None
    (result,) = record.body["results"]
    async with session.get(result["annotation"], headers=auth) as response:
        assert response.status == 200, result
    async with session.get(result["document"], headers=auth) as response:
        document = await response.json()
    assert document["s3_name"] == record.sha256
    digest = hashlib.sha256()
    async with session.get(document["content"], headers=auth) as response:
        assert response.status == 200
        async for chunk in response.content.iter_chunked(256 * 1024):
            digest.update(chunk)
    assert digest.hexdigest() == record.sha256


async def _wait_until_nothing_imports(
    session: aiohttp.ClientSession, base: str, auth: dict[str, str]
) -> None:
    url = f"{base}/api/v1/annotations?status=importing&page_size=1"
    async with asyncio.timeout(60):
        while True:
            async with session.get(url, headers=auth) as response:
                listing = await response.json()
            if listing["pagination"]["total"] == 0:
                return
            await asyncio.sleep(0.2)
