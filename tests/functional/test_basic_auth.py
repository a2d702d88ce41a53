"""HTTP Basic auth on upload endpoints: verified once, shared by concurrent requests, revoked on password change."""

from __future__ import annotations

import asyncio
import base64

from postroom.credentials import BasicCredentialCache, hash_password
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, Api, RunningServer


async def test_concurrent_requests_share_one_verification() -> None:
    """Ten concurrent checks of one uncached credential all succeed and leave it cached."""
    cache = BasicCredentialCache(ttl_s=60)
    stored = hash_password("right-password")
    results = await asyncio.gather(
        *(cache.verify("u", "right-password", 7, stored) for _ in range(10))
    )
    assert results == [True] * 10
    assert cache.lookup("u", "right-password") is not None
    assert await cache.verify("u", "wrong-password", 7, stored) is False
    assert cache.lookup("u", "wrong-password") is None


async def test_cached_credential_is_not_honoured_after_password_change() -> None:
    """A cached credential no longer verifies once the stored hash has changed."""
    cache = BasicCredentialCache(ttl_s=60)
    old = hash_password("old-password")
    assert await cache.verify("u", "old-password", 7, old)
    assert await cache.verify("u", "old-password", 7, hash_password("new-password")) is False


async def test_basic_auth_burst_on_upload_listing(server: RunningServer, anon: Api) -> None:
    """Twenty concurrent Basic-authenticated requests succeed; a wrong password gets 401."""
    url = f"{server.api_url}/queues/1/export?format=json"

    async def fetch(password: str) -> int:
        raw = base64.b64encode(f"{ADMIN_USER}:{password}".encode()).decode()
        async with anon.session.get(url, headers={"Authorization": f"Basic {raw}"}) as response:
            await response.read()
            return response.status

    statuses = await asyncio.gather(*(fetch(ADMIN_PASSWORD) for _ in range(20)))
    assert statuses == [200] * 20
    assert await fetch("not-the-password") == 401
