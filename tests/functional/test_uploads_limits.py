"""The upload size limit over real HTTP: refused from Content-Length, or counted while a chunked
body streams; either way 413 payload_too_large naming the limit, no record and no file left.
A client that hangs up mid-body leaves no temp file either."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

from tests.conftest import Api, RunningServer
from tests.upload_helpers import QUEUE_ID, count_rows, eventually, form, pdf_bytes, stored_files

MiB = 1024 * 1024
NOTHING = {"uploads": 0, "documents": 0, "annotations": 0, "tasks": 0, "jobs": 0}


async def chunks(total: int, size: int = MiB) -> AsyncIterator[bytes]:
    block = os.urandom(size)
    sent = 0
    while sent < total:
        piece = block[: min(size, total - sent)]
        sent += len(piece)
        yield piece


async def test_content_length_over_limit_is_413(admin: Api, server: RunningServer) -> None:
    """A 41 MiB body with Content-Length is refused with 413 naming the 40 MiB limit."""
    status, body = await admin.post(
        f"/queues/{QUEUE_ID}/upload/big.pdf", data=b"%PDF" + b"\0" * (41 * MiB)
    )
    assert status == 413
    assert body["code"] == "payload_too_large"
    assert "41943040" in body["detail"]
    assert await count_rows(server) == NOTHING
    assert stored_files(server) == []
    await admin.session.close()
    await connections_drained(server)


async def connections_drained(server: RunningServer) -> None:
    """Wait until the server has read the refused rest of the body and dropped the connection
    (stopping the service during that lingering would wait for aiohttp's shutdown timeout)."""
    runner = server.service._runner
    assert runner is not None and runner.server is not None
    await eventually(lambda: not runner.server.connections, "the refused connection stays open")


async def test_chunked_body_over_limit_is_413(admin: Api, server: RunningServer) -> None:
    """A 41 MiB chunked body (no Content-Length) is counted while streaming and refused with 413."""
    status, body = await admin.post(f"/uploads/big.bin?queue={QUEUE_ID}", data=chunks(41 * MiB))
    assert status == 413
    assert body["code"] == "payload_too_large"
    assert await count_rows(server) == NOTHING
    assert stored_files(server) == []


async def test_body_of_exactly_the_limit_is_accepted(server_factory) -> None:  # type: ignore[no-untyped-def]
    """A raw body of exactly limits.max_upload_bytes is accepted; one byte more is not."""
    import aiohttp

    from tests.upload_helpers import basic

    server = await server_factory(POSTROOM_LIMITS_MAX_UPLOAD_BYTES=str(64 * 1024))
    async with aiohttp.ClientSession(headers=basic()) as session:
        api = Api(session, server.base, {})
        status, _ = await api.post(f"/uploads/a.bin?queue={QUEUE_ID}", data=chunks(64 * 1024, 4096))
        assert status == 202
        status, body = await api.post(
            f"/uploads/a.bin?queue={QUEUE_ID}", data=chunks(64 * 1024 + 1, 4096)
        )
        assert status == 413
        assert "65536" in body["detail"]


async def test_multipart_second_file_over_limit_leaves_no_blob(server_factory) -> None:  # type: ignore[no-untyped-def]
    """When the second part crosses the limit, the first (complete) file is not kept either."""
    import aiohttp

    from tests.upload_helpers import basic

    server = await server_factory(POSTROOM_LIMITS_MAX_UPLOAD_BYTES=str(256 * 1024))
    first = pdf_bytes()
    second = os.urandom(300 * 1024)
    async with aiohttp.ClientSession(headers=basic()) as session:
        api = Api(session, server.base, {})
        data = form([("ok.pdf", first), ("big.bin", second)])
        status, body = await api.post(f"/queues/{QUEUE_ID}/upload", data=data)
    assert status == 413, body
    assert await count_rows(server) == NOTHING
    assert stored_files(server) == []


async def test_client_hanging_up_mid_body_leaves_no_temp_file(
    admin: Api, server: RunningServer
) -> None:
    """A connection closed halfway through the body leaves neither a record nor a temp file."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.http_port)
    head = (
        f"POST /api/v1/queues/{QUEUE_ID}/upload/cut.pdf HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\n{admin_auth(admin)}\r\n"
        "Content-Type: application/pdf\r\nContent-Length: 5000000\r\n\r\n"
    )
    writer.write(head.encode() + b"%PDF-1.4" + os.urandom(500_000))
    await writer.drain()
    # Let the server start streaming into a temp file, then hang up.
    await eventually(lambda: bool(list((server.data_dir / "tmp").iterdir())), "no temp file")
    writer.close()
    await writer.wait_closed()
    await eventually(lambda: not stored_files(server), "the temp file stays")
    assert await count_rows(server) == NOTHING
    del reader


def admin_auth(api: Api) -> str:
    return f"Authorization: {api.headers['Authorization']}"


async def test_stalled_body_is_dropped_with_408(server_factory) -> None:  # type: ignore[no-untyped-def]
    """A client that stops sending mid-body gets 408 after limits.upload_idle_timeout_s, and its
    temp file is removed."""
    from tests.upload_helpers import basic

    server = await server_factory(POSTROOM_LIMITS_UPLOAD_IDLE_TIMEOUT_S="0.5")
    reader, writer = await asyncio.open_connection("127.0.0.1", server.http_port)
    head = (
        f"POST /api/v1/uploads/stall.pdf?queue={QUEUE_ID} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: {basic()['Authorization']}\r\n"
        "Content-Type: application/pdf\r\nContent-Length: 5000000\r\n\r\n"
    )
    writer.write(head.encode() + b"%PDF-1.4" + os.urandom(400_000))
    await writer.drain()
    async with asyncio.timeout(10):
        status_line = await reader.readline()
    assert status_line.startswith(b"HTTP/1.1 408"), status_line
    writer.close()
    await eventually(lambda: not stored_files(server), "the temp file stays")
    assert await count_rows(server) == NOTHING
