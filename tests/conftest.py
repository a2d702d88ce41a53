"""Fixtures: a real Postroom service on real sockets, over a real SQLite file or PostgreSQL.

Set POSTROOM_DATABASE_URL=postgresql+asyncpg://… to run the whole suite on PostgreSQL; each test
then starts from an empty `public` schema. Otherwise each test gets its own SQLite file.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from postroom.app import Service
from postroom.config import Settings, load_settings
from tests.dns_support import shared_dns

ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin-secret-password"
PG_URL = os.environ.get("POSTROOM_DATABASE_URL", "")


async def reset_postgres(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(sa.text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


def make_settings(data_dir: Path, **env: str) -> Settings:
    """Settings for a test service: free ports, a private data dir, a known admin password."""
    environ = {
        "POSTROOM_STORAGE_DATA_DIR": str(data_dir),
        "POSTROOM_HTTP_PORT": "0",
        "POSTROOM_SMTP_PORT": "0",
        "POSTROOM_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "POSTROOM_PIPELINE_POLL_INTERVAL": "0.05",
        "POSTROOM_PIPELINE_RETRY_BASE_S": "0.05",
        "POSTROOM_LOG_LEVEL": "WARNING",
        # Fast tests on one address must not trip the limiter (tests/test_ratelimit.py sets small ones).
        "POSTROOM_LIMITS_REQUESTS_PER_SECOND": "100000",
        "POSTROOM_LIMITS_BURST": "100000",
        # Mail authentication resolves through the tests' own DNS server, never the internet.
        "POSTROOM_SMTP_DNS_SERVERS": shared_dns().address,
    }
    if PG_URL:
        environ["POSTROOM_DATABASE_URL"] = PG_URL
    environ.update(env)
    return load_settings(None, environ)


class Api:
    """A thin JSON client for the running service (real HTTP over a socket)."""

    def __init__(self, session: aiohttp.ClientSession, base: str, headers: dict[str, str]) -> None:
        self.session = session
        self.base = base
        self.api = base + "/api/v1"
        self.headers = headers

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.api + path

    async def call(
        self, method: str, path: str, *, expect: int | None = None, **kwargs: Any
    ) -> tuple[int, Any]:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        async with self.session.request(
            method, self.url(path), headers=headers, allow_redirects=False, **kwargs
        ) as response:
            text = await response.text()
            try:
                body = await response.json(content_type=None) if text else None
            except ValueError:
                body = text
            if expect is not None:
                assert response.status == expect, (method, path, response.status, body)
            return response.status, body

    async def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        return await self.call("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> tuple[int, Any]:
        return await self.call("POST", path, **kw)

    async def patch(self, path: str, **kw: Any) -> tuple[int, Any]:
        return await self.call("PATCH", path, **kw)

    async def put(self, path: str, **kw: Any) -> tuple[int, Any]:
        return await self.call("PUT", path, **kw)

    async def delete(self, path: str, **kw: Any) -> tuple[int, Any]:
        return await self.call("DELETE", path, **kw)

    async def login(self, username: str, password: str) -> Api:
        status, body = await self.post(
            "/auth/login", json={"username": username, "password": password}
        )
        assert status == 200, body
        return Api(self.session, self.base, {"Authorization": f"Bearer {body['key']}"})

    async def create_user(self, username: str, role: str, queues: list[int] = ()) -> Api:  # type: ignore[assignment]
        """Create a user with a role (and queue assignments) and return a client logged in as it."""
        password = f"{username}-password"
        status, body = await self.post(
            "/users",
            json={
                "username": username,
                "password": password,
                "groups": [f"{self.api}/groups/{_group_id(role)}"],
                "queues": [f"{self.api}/queues/{q}" for q in queues],
                "organization": f"{self.api}/organizations/1",
            },
        )
        assert status == 201, body
        return await self.login(username, password)


def _group_id(role: str) -> int:
    from postroom.domain.access import GROUP_IDS

    return GROUP_IDS[role]


@dataclass
class RunningServer:
    service: Service
    settings: Settings
    base: str
    http_port: int
    smtp_port: int | None
    data_dir: Path

    @property
    def api_url(self) -> str:
        return self.base + "/api/v1"


@pytest.fixture
async def server_factory(tmp_path: Path) -> AsyncIterator[Any]:
    """Start services with extra environment settings; all are stopped at the end of the test."""
    started: list[Service] = []
    if PG_URL:
        await reset_postgres(PG_URL)

    async def start(**env: str) -> RunningServer:
        settings = make_settings(tmp_path / "data", **env)
        service = Service(settings)
        running = await service.start()
        started.append(service)
        return RunningServer(
            service=service,
            settings=service.settings,
            base=service.settings.base_url,
            http_port=running.http_port,
            smtp_port=running.smtp_port,
            data_dir=settings.data_dir,
        )

    yield start
    for service in reversed(started):
        await service.stop()


@pytest.fixture
async def server(server_factory: Any) -> RunningServer:
    return await server_factory()  # type: ignore[no-any-return]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def anon(server: RunningServer, http: aiohttp.ClientSession) -> Api:
    """A client with no credentials."""
    return Api(http, server.base, {})


@pytest.fixture
async def admin(anon: Api) -> Api:
    """A client logged in as the bootstrap admin (Bearer token)."""
    return await anon.login(ADMIN_USER, ADMIN_PASSWORD)
