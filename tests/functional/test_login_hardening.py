"""Password checks under attack, over real HTTP: attempts reserved before argon2, fair verification
between addresses, a dummy check for unknown usernames, throttled password changes, lockouts that
one address alone cannot cause, cached Basic credentials, and credentials never logged."""

from __future__ import annotations

import asyncio
import base64
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from postroom import logs, metrics
from postroom.ratelimit import USER_FACTOR
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, PG_URL, Api, reset_postgres
from tests.subprocess_server import ServeProcess


def _checks(subject: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "postroom_password_checks_total", {"subject": subject}
    )
    return value or 0.0


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@pytest.fixture
async def from_address() -> AsyncIterator[Any]:
    """Client sessions whose connections come from a given loopback address (127.0.0.x)."""
    sessions: list[aiohttp.ClientSession] = []

    def session(address: str) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(local_addr=(address, 0))
        opened = aiohttp.ClientSession(connector=connector)
        sessions.append(opened)
        return opened

    yield session
    for opened in sessions:
        await opened.close()


async def _login_status(http: aiohttp.ClientSession, base: str, user: str, password: str) -> int:
    async with http.post(
        base + "/api/v1/auth/login", json={"username": user, "password": password}
    ) as response:
        await response.read()
        return response.status


async def test_concurrent_wrong_passwords_are_refused_before_argon2(
    server_factory: Any, http: aiohttp.ClientSession
) -> None:
    """80 concurrent wrong passwords: only the allowed attempts are checked, the rest get 429."""
    server = await server_factory(
        POSTROOM_LIMITS_LOGIN_ATTEMPTS_PER_MINUTE="5",
        POSTROOM_HTTP_MAX_CONNECTIONS_PER_CLIENT="200",
    )
    before = _checks("user")
    statuses = await asyncio.gather(
        *(_login_status(http, server.base, ADMIN_USER, f"wrong-{i}") for i in range(80))
    )
    assert statuses.count(401) == 5, statuses
    assert statuses.count(429) == 75
    assert _checks("user") - before == 5


async def test_a_burst_from_one_address_does_not_stall_other_logins(
    server_factory: Any, http: aiohttp.ClientSession, from_address: Any
) -> None:
    """While one address has 20 wrong passwords queued, a login from another address is checked
    at once, not behind them: most of the burst is still pending when it is answered."""
    server = await server_factory(POSTROOM_LIMITS_LOGIN_ATTEMPTS_PER_MINUTE="1000")
    burst = [
        asyncio.create_task(_login_status(http, server.base, ADMIN_USER, f"wrong-{i}"))
        for i in range(20)
    ]
    try:
        await asyncio.sleep(0.3)  # let the burst reach the server and queue up
        other = from_address("127.0.0.2")
        assert await _login_status(other, server.base, ADMIN_USER, ADMIN_PASSWORD) == 200
        finished = sum(task.done() for task in burst)
        assert finished < len(burst) // 2, f"{finished} of the burst answered first"
    finally:
        statuses = await asyncio.gather(*burst)
    assert set(statuses) == {401}


async def test_unknown_username_is_checked_against_a_dummy_hash(
    server: Any, http: aiohttp.ClientSession
) -> None:
    """A login or Basic credential naming no user runs one argon2 check, like a real user's, and
    gets the same answer as a wrong password."""
    before = _checks("unknown")
    async with http.post(
        server.api_url + "/auth/login", json={"username": "nobody-here", "password": "x"}
    ) as response:
        unknown_answer = (response.status, await response.json())
    assert _checks("unknown") - before == 1
    async with http.post(
        server.api_url + "/auth/login", json={"username": ADMIN_USER, "password": "x"}
    ) as response:
        assert (response.status, await response.json()) == unknown_answer
    async with http.post(
        server.api_url + "/queues/1/upload/a.txt",
        headers={"Authorization": _basic("nobody-here", "x")},
        data=b"x",
    ) as response:
        assert response.status == 401
    assert _checks("unknown") - before == 2


async def test_basic_credentials_are_verified_once_then_cached(
    server: Any, http: aiohttp.ClientSession
) -> None:
    """Repeated requests with the same Basic credential pay for one argon2 check."""
    before = _checks("user")
    headers = {"Authorization": _basic(ADMIN_USER, ADMIN_PASSWORD)}
    for _ in range(5):
        async with http.get(
            server.api_url + "/queues/1/export?format=json", headers=headers
        ) as response:
            assert response.status == 200
    assert _checks("user") - before == 1


async def test_password_change_is_throttled_like_login(
    server_factory: Any, http: aiohttp.ClientSession
) -> None:
    """Wrong old passwords on /auth/password/change count as failed logins: 429 after the limit,
    even with the right one."""
    server = await server_factory(POSTROOM_LIMITS_LOGIN_ATTEMPTS_PER_MINUTE="3")
    admin = await Api(http, server.base, {}).login(ADMIN_USER, ADMIN_PASSWORD)

    async def change(old: str) -> int:
        status, _ = await admin.post(
            "/auth/password/change",
            json={
                "old_password": old,
                "new_password1": "N3w-pass!word",
                "new_password2": "N3w-pass!word",
            },
        )
        return status

    # The login above succeeded and gave its attempt back: three wrong ones are allowed.
    assert [await change("wrong") for _ in range(4)] == [400, 400, 400, 429]
    assert await change(ADMIN_PASSWORD) == 429


async def test_one_address_cannot_lock_a_user_out(
    server_factory: Any, http: aiohttp.ClientSession, from_address: Any
) -> None:
    """An address hammering a username is refused, but the user still logs in from elsewhere;
    many addresses guessing together do exhaust the username's own limit."""
    server = await server_factory(POSTROOM_LIMITS_LOGIN_ATTEMPTS_PER_MINUTE="3")
    hammered = [await _login_status(http, server.base, ADMIN_USER, "wrong") for _ in range(12)]
    assert hammered[:3] == [401] * 3 and set(hammered[3:]) == {429}
    elsewhere = from_address("127.0.0.2")
    assert await _login_status(elsewhere, server.base, ADMIN_USER, ADMIN_PASSWORD) == 200
    # A distributed guess: fresh addresses, three attempts each, until the username's own limit
    # refuses an address that has attempts left (USER_FACTOR addresses' worth, plus refill).
    refused_fresh = False
    for n in range(3 * USER_FACTOR):
        attacker = from_address(f"127.0.1.{n + 1}")
        if await _login_status(attacker, server.base, ADMIN_USER, "wrong") == 429:
            refused_fresh = True
            break
        for _ in range(2):
            await _login_status(attacker, server.base, ADMIN_USER, "wrong")
    assert refused_fresh
    fresh = from_address("127.0.0.3")
    assert await _login_status(fresh, server.base, ADMIN_USER, ADMIN_PASSWORD) == 429


async def _raw_request(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


async def test_malformed_authorization_headers_never_reach_the_log(tmp_path: Path) -> None:
    """Authorization headers aiohttp cannot parse, or Postroom cannot decode, leave no trace of
    their credential in the server's log (text and tracebacks), and the repeated parse errors
    are logged a few times, not once per request."""
    if PG_URL:
        await reset_postgres(PG_URL)
    secret = "c2VjcmV0LXBhc3N3b3Jk"
    proc = ServeProcess(tmp_path / "data", POSTROOM_LOG_LEVEL="INFO")
    proc.start()
    try:
        malformed = [
            f"Authorization: Basic {secret}\x01tail",  # control character: aiohttp's 400
            f"Authorization {secret}",  # no colon: aiohttp's 400
            f"Authorization: Basic \xff\xfe{secret}",  # not ASCII
            f"Authorization: Bearer {secret} {secret}",
            f"Authorization: Digest {secret}",
        ]
        for _ in range(6):
            for header in malformed:
                await _raw_request(
                    proc.http_port,
                    b"POST /api/v1/queues/1/upload HTTP/1.1\r\nHost: x\r\n"
                    + header.encode("latin-1")
                    + b"\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx",
                )
    finally:
        proc.signal(signal.SIGTERM)
        assert proc.wait() == 0
    output = proc.output()
    assert "Error handling request" in output  # aiohttp did log the bad requests...
    assert secret not in output  # ...without their credentials
    # 12 unparsable requests, one kind of line: throttled to a burst per window.
    assert output.count("Error handling request") <= logs.THROTTLE_BURST
    assert "status=500" not in output
