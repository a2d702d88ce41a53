"""A console client over real HTTP: a cookie jar like a browser's, forms posted with their CSRF
token read from the page, and small helpers the console tests share."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa

from postroom.db import tables as t
from tests.conftest import RunningServer

HTML = {"Accept": "text/html,application/xhtml+xml"}
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def csrf_of(page: str) -> str:
    found = _CSRF.search(page)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)


class Console:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def get(self, path: str, **kw: Any) -> tuple[int, str, aiohttp.ClientResponse]:
        async with self.session.get(
            self.base + path, headers=HTML, allow_redirects=False, **kw
        ) as response:
            return response.status, await response.text(), response

    async def post(
        self, path: str, data: Any, **kw: Any
    ) -> tuple[int, str, aiohttp.ClientResponse]:
        async with self.session.post(
            self.base + path, data=data, headers=HTML, allow_redirects=False, **kw
        ) as response:
            return response.status, await response.text(), response

    async def csrf(self, path: str = "/") -> str:
        status, page, _ = await self.get(path)
        assert status == 200, (path, status, page)
        return csrf_of(page)

    async def login(self, username: str, password: str) -> aiohttp.ClientResponse:
        token = await self.csrf("/login")
        status, page, response = await self.post(
            "/login",
            {"csrf_token": token, "username": username, "password": password, "next": "/"},
        )
        assert status == 303, (status, page)
        return response

    def session_key(self) -> str | None:
        for cookie in self.session.cookie_jar:
            if cookie.key == "postroom_session":
                return cookie.value
        return None


@asynccontextmanager
async def console(server: RunningServer) -> AsyncIterator[Console]:
    jar = aiohttp.CookieJar(unsafe=True)  # keep cookies of 127.0.0.1, as a browser does
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        yield Console(session, server.base)


async def annotation_status(server: RunningServer, annotation_id: int) -> str:
    async with server.service.runtime.db.reading() as conn:  # type: ignore[union-attr]
        return str(
            await conn.scalar(
                sa.select(t.annotations.c.status).where(t.annotations.c.id == annotation_id)
            )
        )


async def wait_status(
    server: RunningServer, annotation_id: int, wanted: str, within: float = 30.0
) -> None:
    async with asyncio.timeout(within):
        while True:
            if await annotation_status(server, annotation_id) == wanted:
                return
            await asyncio.sleep(0.05)


async def mail_log_rows(server: RunningServer) -> list[Any]:
    async with server.service.runtime.db.reading() as conn:  # type: ignore[union-attr]
        return list((await conn.execute(sa.select(t.mail_log).order_by(t.mail_log.c.id))).all())


async def repair_blob(server: RunningServer, annotation_id: int, good: bytes) -> None:
    """Put good bytes where a document's stored file is (an operator restoring a file)."""
    rt = server.service.runtime
    assert rt is not None
    async with rt.db.reading() as conn:
        key = await conn.scalar(
            sa.select(t.documents.c.s3_name)
            .join(t.annotations, t.annotations.c.document_id == t.documents.c.id)
            .where(t.annotations.c.id == annotation_id)
        )
    await asyncio.to_thread(Path(rt.blobs.path_of(str(key))).write_bytes, good)
