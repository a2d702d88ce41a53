"""Connections over real sockets: caps per client address and in total (HTTP 503, SMTP 421), the
header deadline, the keep-alive timeout, body deadlines, and the open file limit."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import resource
import smtplib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from postroom.connections import FD_RESERVE
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER

OTHER = "127.0.0.2"  # a second client address on the Linux loopback
WAIT = 10.0  # generous bound for anything that must happen; never a timing assertion
Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@contextlib.asynccontextmanager
async def sockets(port: int, count: int, source: str = "127.0.0.1") -> AsyncIterator[list[Conn]]:
    """`count` open TCP connections from `source`, closed at the end."""
    opened: list[Conn] = []
    try:
        for _ in range(count):
            opened.append(await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0)))
        yield opened
    finally:
        for _, writer in opened:
            writer.close()


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (fails if it never does)."""
    return await asyncio.wait_for(reader.read(), WAIT)


async def http_get(port: int, path: str, source: str = "127.0.0.1") -> bytes:
    request = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    async with sockets(port, 1, source) as [(reader, writer)]:
        writer.write(request)
        return await until_closed(reader)


def smtp_ehlo(port: int, source: str) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, source_address=(source, 0), timeout=WAIT) as smtp:
        return smtp.ehlo("other.example")


async def test_http_per_client_cap_answers_503_and_other_clients_are_served(
    server_factory: Any,
) -> None:
    """Past the per-address cap a new connection gets 503 and is closed; other addresses, and the
    same address once it closed some, are answered as usual."""
    server = await server_factory(POSTROOM_HTTP_MAX_CONNECTIONS_PER_CLIENT="5")
    port = server.http_port
    async with sockets(port, 5) as idle:
        async with sockets(port, 3) as extra:
            for _, writer in extra:  # clients that send their request at once still read the 503
                writer.write(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            for reader, _ in extra:
                answer = await until_closed(reader)
                assert answer.startswith(b"HTTP/1.1 503 "), answer
                assert b"Connection: close" in answer and b"service_unavailable" in answer
        assert b" 200 OK" in (await http_get(port, "/api/v1/health", OTHER)).split(b"\r\n")[0]
        idle[0][1].close()
        await idle[0][1].wait_closed()
        deadline = asyncio.get_running_loop().time() + WAIT
        while (answer := await http_get(port, "/api/v1/health")).startswith(b"HTTP/1.1 503"):
            assert asyncio.get_running_loop().time() < deadline, "the closed slot was never freed"
            await asyncio.sleep(0.05)
        assert answer.startswith(b"HTTP/1.1 200"), answer


async def test_http_total_cap_refuses_every_address(server_factory: Any) -> None:
    """Past the total cap any address gets 503; the health check answers again once it drops."""
    server = await server_factory(
        POSTROOM_HTTP_MAX_CONNECTIONS="6", POSTROOM_HTTP_MAX_CONNECTIONS_PER_CLIENT="100"
    )
    async with sockets(server.http_port, 6):
        answer = await http_get(server.http_port, "/api/v1/health", OTHER)
        assert answer.startswith(b"HTTP/1.1 503 "), answer
        assert b"to this server" in answer
    gate = server.service.gates[0]
    deadline = asyncio.get_running_loop().time() + WAIT
    while gate.open:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    assert (await http_get(server.http_port, "/api/v1/health", OTHER)).startswith(b"HTTP/1.1 200")


async def test_http_slow_headers_and_silent_connections_are_closed(server_factory: Any) -> None:
    """A client that trickles header bytes, or sends nothing, is cut off at the header deadline."""
    server = await server_factory(
        POSTROOM_HTTP_HEADER_TIMEOUT_S="0.5", POSTROOM_HTTP_KEEPALIVE_TIMEOUT_S="300"
    )
    async with sockets(server.http_port, 2) as [(slow, slow_writer), (silent, _)]:
        slow_writer.write(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")

        async def trickle() -> None:
            with contextlib.suppress(ConnectionError):
                for i in range(200):
                    slow_writer.write(f"X-Slow-{i}: 1\r\n".encode())
                    await asyncio.sleep(0.1)

        trickling = asyncio.create_task(trickle())
        try:
            assert await until_closed(slow) == b""
            assert await until_closed(silent) == b""
        finally:
            trickling.cancel()


async def test_http_idle_keepalive_connection_is_closed(server_factory: Any) -> None:
    """After a response, a keep-alive connection that sends nothing more is closed."""
    server = await server_factory(
        POSTROOM_HTTP_KEEPALIVE_TIMEOUT_S="0.5", POSTROOM_HTTP_HEADER_TIMEOUT_S="300"
    )
    async with sockets(server.http_port, 1) as [(reader, writer)]:
        writer.write(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
        assert head.startswith(b"HTTP/1.1 200"), head
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await asyncio.wait_for(reader.readexactly(length), WAIT)
        assert await until_closed(reader) == b""


async def test_json_body_has_a_total_deadline(server_factory: Any) -> None:
    """A JSON body that does not arrive within http.body_timeout_s gets 408 and a closed connection."""
    server = await server_factory(POSTROOM_HTTP_BODY_TIMEOUT_S="0.5")
    async with sockets(server.http_port, 1) as [(reader, writer)]:
        writer.write(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 200\r\n\r\n{"username": '
        )
        answer = await until_closed(reader)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"http.body_timeout_s" in answer


async def test_upload_slower_than_the_minimum_rate_is_dropped(server_factory: Any) -> None:
    """An upload that keeps trickling (never idle long enough for the idle timeout) but averages
    below limits.upload_min_bytes_per_s gets 408."""
    server = await server_factory(
        POSTROOM_LIMITS_UPLOAD_IDLE_TIMEOUT_S="0.5", POSTROOM_LIMITS_UPLOAD_MIN_BYTES_PER_S="2000"
    )
    basic = base64.b64encode(f"{ADMIN_USER}:{ADMIN_PASSWORD}".encode()).decode()
    async with sockets(server.http_port, 1) as [(reader, writer)]:
        writer.write(
            b"POST /api/v1/queues/1/upload/slow.txt HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Basic " + basic.encode() + b"\r\n"
            b"Content-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n"
        )

        async def trickle() -> None:
            with contextlib.suppress(ConnectionError):
                for _ in range(400):
                    writer.write(b"x" * 20)
                    await asyncio.sleep(0.1)

        trickling = asyncio.create_task(trickle())
        try:
            answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
        finally:
            trickling.cancel()
    assert answer.startswith(b"HTTP/1.1 408 "), answer


async def test_smtp_per_client_cap_answers_421_and_other_clients_are_served(
    server_factory: Any,
) -> None:
    """Past the per-address cap an SMTP client gets `421 4.7.0` and is closed; another address
    still gets its greeting and EHLO, the API still answers, and idle sessions time out."""
    server = await server_factory(
        POSTROOM_SMTP_MAX_CONNECTIONS_PER_CLIENT="3", POSTROOM_SMTP_TIMEOUT="1"
    )
    port = server.smtp_port
    async with sockets(port, 3) as held:
        for reader, _ in held:
            assert (await asyncio.wait_for(reader.readline(), WAIT)).startswith(b"220 ")
        async with sockets(port, 2) as extra:
            for reader, _ in extra:
                answer = await until_closed(reader)
                assert answer.startswith(b"421 4.7.0 "), answer
        code, _ = await asyncio.to_thread(smtp_ehlo, port, OTHER)
        assert code == 250
        assert (await http_get(server.http_port, "/api/v1/health")).startswith(b"HTTP/1.1 200")
        for reader, _ in held:  # idle past smtp.timeout: 421 4.4.2, then closed
            assert b"421 4.4.2" in await until_closed(reader)


async def test_smtp_total_cap_refuses_every_address(server_factory: Any) -> None:
    """Past the total SMTP cap any address gets `421 4.7.0`."""
    server = await server_factory(
        POSTROOM_SMTP_MAX_CONNECTIONS="2", POSTROOM_SMTP_MAX_CONNECTIONS_PER_CLIENT="10"
    )
    async with sockets(server.smtp_port, 2) as held:
        for reader, _ in held:
            assert (await asyncio.wait_for(reader.readline(), WAIT)).startswith(b"220 ")
        async with sockets(server.smtp_port, 1, OTHER) as [(reader, _)]:
            assert (await until_closed(reader)).startswith(b"421 4.7.0 ")


@pytest.fixture
def lowered_fd_limit() -> Any:
    """The soft open file limit lowered below the hard one for the test, restored after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 2048:
        pytest.skip("the hard open file limit is too low to lower the soft one")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    yield hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_fd_limit_is_raised_and_caps_fit_it(
    server_factory: Any, lowered_fd_limit: int, caplog: pytest.LogCaptureFixture
) -> None:
    """At start the soft open file limit is raised to the hard limit; caps that do not fit it
    are lowered with a warning, and a cap of 0 is sized from it."""
    hard = lowered_fd_limit
    with caplog.at_level(logging.WARNING, logger="postroom.connections"):
        server = await server_factory(POSTROOM_HTTP_MAX_CONNECTIONS=str(hard * 2))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard
    http, smtp = server.service.gates
    assert http.max_total + smtp.max_total <= hard - FD_RESERVE
    assert "do not fit the open file limit" in caplog.text
    auto = await server_factory()
    http, smtp = auto.service.gates
    assert 0 < http.max_total + smtp.max_total <= hard - FD_RESERVE
