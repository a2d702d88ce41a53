"""Rate limits over real HTTP: per address, per user, failed logins; and the SMTP limiter interface."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa

from postroom import metrics
from postroom.config import load_settings
from postroom.db import tables as t
from postroom.ratelimit import RateLimits
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, Api

# Four requests, then one more every ten seconds: no refill happens within a test.
SMALL = {"POSTROOM_LIMITS_REQUESTS_PER_SECOND": "0.1", "POSTROOM_LIMITS_BURST": "4"}


@pytest.fixture
async def other_address() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session whose connections come from 127.0.0.2 (a second client address)."""
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


async def _until_limited(api: Api, path: str, attempts: int = 20) -> tuple[int, Any, Any]:
    for _ in range(attempts):
        async with api.session.get(api.url(path), headers=api.headers) as response:
            body = await response.json(content_type=None)
            if response.status == 429:
                return response.status, body, response.headers
            assert response.status == 200, body
    raise AssertionError(f"{path} was never rate limited in {attempts} requests")


async def test_burst_over_the_limit_gets_429_with_retry_after(
    server_factory: Any, http: aiohttp.ClientSession
) -> None:
    """Requests beyond the burst answer 429 rate_limited with a url and a whole-second Retry-After."""
    server = await server_factory(**SMALL)
    admin = await Api(http, server.base, {}).login(ADMIN_USER, ADMIN_PASSWORD)
    status, body, headers = await _until_limited(admin, "/auth/user")
    assert status == 429
    assert body["code"] == "rate_limited"
    assert "detail" in body and body["url"].startswith("https://")
    assert int(headers["Retry-After"]) >= 1


async def test_health_is_never_limited(server_factory: Any, http: aiohttp.ClientSession) -> None:
    """Once an address is limited, /health still answers 200 (load balancers poll it)."""
    server = await server_factory(**SMALL)
    admin = await Api(http, server.base, {}).login(ADMIN_USER, ADMIN_PASSWORD)
    await _until_limited(admin, "/auth/user")
    for _ in range(10):
        status, body = await admin.get("/health")
        assert status == 200, body


async def test_user_limit_follows_the_user_across_addresses(
    server_factory: Any, http: aiohttp.ClientSession, other_address: aiohttp.ClientSession
) -> None:
    """A user who exhausted the burst from one address is limited from a fresh address too."""
    server = await server_factory(**SMALL)
    # Log in from the second address so the first one's bucket and the user's empty together.
    elsewhere = await Api(other_address, server.base, {}).login(ADMIN_USER, ADMIN_PASSWORD)
    admin = Api(http, server.base, elsewhere.headers)
    await _until_limited(admin, "/auth/user")
    status, body = await elsewhere.get("/auth/user")
    assert status == 429, body
    assert "user" in body["detail"]


async def test_address_limit_applies_before_authentication(
    server_factory: Any, http: aiohttp.ClientSession, other_address: aiohttp.ClientSession
) -> None:
    """Bad credentials from one address are refused with 429 once its burst is spent, other addresses are not."""
    server = await server_factory(**SMALL)
    stranger = Api(http, server.base, {"Authorization": "Bearer not-a-token"})
    statuses = [(await stranger.get("/auth/user"))[0] for _ in range(8)]
    assert statuses[0] == 401
    assert statuses[-1] == 429
    fresh = Api(other_address, server.base, {"Authorization": "Bearer not-a-token"})
    assert (await fresh.get("/auth/user"))[0] == 401


async def test_forwarded_for_is_trusted_only_from_configured_proxies(
    server_factory: Any, http: aiohttp.ClientSession
) -> None:
    """Behind a trusted proxy each X-Forwarded-For client has its own bucket; otherwise the header is ignored."""
    server = await server_factory(**SMALL, POSTROOM_HTTP_FORWARDED_ALLOW_IPS="127.0.0.1/32")
    anon = Api(http, server.base, {})
    for _ in range(6):
        status, _ = await anon.get("/auth/user", headers={"X-Forwarded-For": "203.0.113.7"})
    assert status == 429
    status, _ = await anon.get("/auth/user", headers={"X-Forwarded-For": "203.0.113.8"})
    assert status == 401


async def test_forwarded_for_is_ignored_from_untrusted_peers(
    server_factory: Any, http: aiohttp.ClientSession
) -> None:
    """Without forwarded_allow_ips a client cannot dodge its limit by forging X-Forwarded-For."""
    server = await server_factory(**SMALL)
    anon = Api(http, server.base, {})
    statuses = [
        (await anon.get("/auth/user", headers={"X-Forwarded-For": f"198.51.100.{i}"}))[0]
        for i in range(8)
    ]
    assert statuses[-1] == 429


async def test_failed_logins_are_limited_per_username_and_address(
    server_factory: Any, http: aiohttp.ClientSession
) -> None:
    """After the allowed failed logins even the right password gets 429 until the window refills."""
    server = await server_factory(POSTROOM_LIMITS_LOGIN_ATTEMPTS_PER_MINUTE="3")
    anon = Api(http, server.base, {})
    wrong = {"username": ADMIN_USER, "password": "wrong"}
    for _ in range(3):
        status, body = await anon.post("/auth/login", json=wrong)
        assert status == 401, body
    async with http.post(
        anon.url("/auth/login"), json={"username": ADMIN_USER, "password": ADMIN_PASSWORD}
    ) as response:
        assert response.status == 429
        assert (await response.json())["code"] == "rate_limited"
        assert int(response.headers["Retry-After"]) >= 1
    status, body = await anon.post("/auth/login", json={"username": "someone", "password": "x"})
    assert status == 429, body


async def test_successful_logins_do_not_count_as_failures(
    server_factory: Any, http: aiohttp.ClientSession
) -> None:
    """Many correct logins in a row are never refused by the failed-login limit."""
    server = await server_factory(POSTROOM_LIMITS_LOGIN_ATTEMPTS_PER_MINUTE="2")
    anon = Api(http, server.base, {})
    for _ in range(6):
        await anon.login(ADMIN_USER, ADMIN_PASSWORD)


def test_smtp_connection_and_message_limits_per_address() -> None:
    """The SMTP limiter allows the configured number per address, then refuses, independently per address."""
    settings = load_settings(
        None,
        {
            "POSTROOM_LIMITS_SMTP_CONNECTIONS_PER_MINUTE": "2",
            "POSTROOM_LIMITS_SMTP_MESSAGES_PER_MINUTE": "3",
        },
    )
    limits = RateLimits(settings.limits)
    assert [limits.smtp_connection_allowed("192.0.2.1") for _ in range(3)] == [True, True, False]
    assert limits.smtp_connection_allowed("192.0.2.2") is True
    assert [limits.smtp_message_allowed("192.0.2.1") for _ in range(4)] == [True] * 3 + [False]
    assert limits.smtp_message_allowed("192.0.2.2") is True


async def test_zero_rate_disables_request_limits(
    server_factory: Any, http: aiohttp.ClientSession
) -> None:
    """limits.requests_per_second = 0 turns the request limiter off."""
    server = await server_factory(
        POSTROOM_LIMITS_REQUESTS_PER_SECOND="0", POSTROOM_LIMITS_BURST="1"
    )
    admin = await Api(http, server.base, {}).login(ADMIN_USER, ADMIN_PASSWORD)
    for _ in range(10):
        status, body = await admin.get("/auth/user")
        assert status == 200, body


async def test_rossum_sdk_completes_a_bulk_upload_under_the_limit(
    server_factory: Any, tmp_path: Path
) -> None:
    """The rossum-api SDK meets 429s during a parallel bulk upload, retries them, and every file arrives."""
    from rossum_api import AsyncRossumAPIClient
    from rossum_api.dtos import UserCredentials

    server = await server_factory(
        POSTROOM_LIMITS_REQUESTS_PER_SECOND="10", POSTROOM_LIMITS_BURST="5"
    )
    limited_before = _limited("address")
    paths = []
    for i in range(12):
        path = tmp_path / f"invoice-{i}.txt"
        path.write_text(f"Invoice {i}\n")
        paths.append(path)
    sdk = AsyncRossumAPIClient(
        base_url=server.api_url, credentials=UserCredentials(ADMIN_USER, ADMIN_PASSWORD)
    )
    try:
        tasks = await asyncio.gather(*(sdk.upload_document(1, [(str(p), p.name)]) for p in paths))
    finally:
        await sdk._http_client.client.aclose()
    assert len(tasks) == 12
    assert _limited("address") > limited_before
    async with server.service.runtime.db.reading() as conn:
        names = (await conn.execute(sa.select(t.documents.c.original_file_name))).scalars().all()
    assert sorted(names) == sorted(p.name for p in paths)


async def test_failed_basic_credentials_count_as_failed_logins(
    server_factory: Any, http: aiohttp.ClientSession
) -> None:
    """Wrong Basic passwords on an upload endpoint are limited like failed logins; elsewhere they are not counted."""
    server = await server_factory(POSTROOM_LIMITS_LOGIN_ATTEMPTS_PER_MINUTE="3")
    wrong = {"Authorization": _basic(ADMIN_USER, "wrong")}
    for _ in range(5):  # token-only route: refused before any password check, so not counted
        async with http.get(server.api_url + "/auth/user", headers=wrong) as response:
            assert response.status == 401
    statuses = []
    for _ in range(4):
        async with http.post(
            server.api_url + "/queues/1/upload", headers=wrong, data=b"x"
        ) as response:
            statuses.append(response.status)
    assert statuses == [401, 401, 401, 429]
    right = {"Authorization": _basic(ADMIN_USER, ADMIN_PASSWORD)}
    async with http.post(server.api_url + "/queues/1/upload", headers=right, data=b"x") as response:
        assert response.status == 429
        assert int(response.headers["Retry-After"]) >= 1


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _limited(scope: str) -> float:
    value = metrics.REGISTRY.get_sample_value("postroom_rate_limited_total", {"scope": scope})
    return value or 0.0
