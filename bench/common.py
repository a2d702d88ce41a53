"""Shared pieces of the bench scripts: a scratch PostgreSQL schema, and timing a list endpoint.

Run the scripts from the repository root (`.venv/bin/python bench/<script>.py`); this module is
imported beside them.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from postroom.app import Service
from postroom.config import load_settings


async def reset_postgres(url: str) -> None:
    """Drop and recreate the `public` schema (a scratch database only)."""
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
        await conn.execute(sa.text("CREATE SCHEMA public"))
    await engine.dispose()


@asynccontextmanager
async def bench_service(password: str) -> AsyncIterator[Service]:
    """An in-process service on free ports and a temporary data dir, rate limits off; on
    $POSTROOM_DATABASE_URL (its schema wiped first) when set, else SQLite."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "POSTROOM_STORAGE_DATA_DIR": str(Path(tmp) / "data"),
            "POSTROOM_HTTP_PORT": "0",
            "POSTROOM_SMTP_PORT": "0",
            "POSTROOM_BOOTSTRAP_ADMIN_PASSWORD": password,
            "POSTROOM_LOG_LEVEL": "WARNING",
            "POSTROOM_LIMITS_REQUESTS_PER_SECOND": "0",  # measure the endpoints, not the limiter
            # Every bench client comes from 127.0.0.1: the per-address connection caps stay out.
            "POSTROOM_HTTP_MAX_CONNECTIONS_PER_CLIENT": "4096",
            "POSTROOM_SMTP_MAX_CONNECTIONS_PER_CLIENT": "4096",
        }
        if os.environ.get("POSTROOM_DATABASE_URL"):
            env["POSTROOM_DATABASE_URL"] = os.environ["POSTROOM_DATABASE_URL"]
            await reset_postgres(env["POSTROOM_DATABASE_URL"])
        service = Service(load_settings(None, env))
        await service.start()
        try:
            yield service
        finally:
            await service.stop()


@dataclass
class ListTiming:
    body: dict[str, Any]
    median_ms: float
    p95_ms: float
    statements: int  # SQL statements the server ran for the last request

    def summary(self) -> str:
        return (
            f"median {self.median_ms:.1f} ms, p95 {self.p95_ms:.1f} ms, "
            f"{self.statements} SQL statements per request"
        )


class ListTimer:
    """Times GET requests to list endpoints of an in-process service, counting its SQL."""

    def __init__(self, engine: AsyncEngine, api: str, password: str) -> None:
        self.api = api
        self.password = password
        self.statements: list[str] = []
        event.listen(
            engine.sync_engine, "before_cursor_execute", lambda *a: self.statements.append(a[2])
        )

    async def login(self, http: aiohttp.ClientSession) -> dict[str, str]:
        body = {"username": "admin", "password": self.password}
        async with http.post(f"{self.api}/auth/login", json=body) as response:
            return {"Authorization": f"Bearer {(await response.json())['key']}"}

    async def time(
        self, http: aiohttp.ClientSession, headers: dict[str, str], path: str, requests: int
    ) -> ListTiming:
        timings = []
        body: dict[str, Any] = {}
        for _ in range(requests):
            self.statements.clear()
            started = time.perf_counter()
            async with http.get(f"{self.api}{path}", headers=headers) as response:
                body = await response.json()
                assert response.status == 200, body
            timings.append(time.perf_counter() - started)
        timings.sort()
        return ListTiming(
            body=body,
            median_ms=statistics.median(timings) * 1000,
            p95_ms=timings[max(0, int(len(timings) * 0.95) - 1)] * 1000,
            statements=len(self.statements),
        )
