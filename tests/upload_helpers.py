"""Shared by the upload, document and task tests: real sample files, Basic credentials, waiting
for the pipeline, and looks into the data directory and the database of a running service."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa
from PIL import Image
from pypdf import PdfWriter

from postroom.db import tables as t
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, Api, RunningServer

QUEUE_ID = 1  # the queue created on first start


def pdf_bytes(pages: int = 1, tag: str | None = None) -> bytes:
    """A valid PDF with `pages` blank pages; `tag` (random by default) makes its bytes unique."""
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    writer.add_metadata({"/Title": tag or os.urandom(8).hex()})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def png_bytes(width: int = 320, height: int = 200) -> bytes:
    image = Image.new("RGB", (width, height), tuple(os.urandom(3)))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def docx_with_thumbnail_first() -> bytes:
    """A DOCX whose first zip entry is a 20 KB thumbnail: libmagic alone calls it a zip."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("docProps/thumbnail.jpeg", os.urandom(20000))
        archive.writestr("word/document.xml", "<w:document/>")
    return out.getvalue()


def basic(username: str = ADMIN_USER, password: str = ADMIN_PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def basic_api(api: Api, username: str = ADMIN_USER, password: str = ADMIN_PASSWORD) -> Api:
    return Api(api.session, api.base, basic(username, password))


def form(
    files: list[tuple[str, bytes]],
    fields: dict[str, str] | None = None,
    field_name: str = "content",
) -> aiohttp.FormData:
    data = aiohttp.FormData()
    for name, content in files:
        data.add_field(field_name, content, filename=name, content_type="application/octet-stream")
    for key, value in (fields or {}).items():
        data.add_field(key, value)
    return data


def id_of(url: str) -> int:
    return int(url.rstrip("/").rsplit("/", 1)[-1])


async def wait_for_annotation(
    api: Api, annotation_url: str, *, leaving: str = "importing"
) -> dict[str, Any]:
    """Poll an annotation until its status is no longer `leaving` (the pipeline's work)."""
    async with asyncio.timeout(30):
        while True:
            status, body = await api.get(annotation_url)
            assert status == 200, body
            if body["status"] != leaving:
                return body  # type: ignore[no-any-return]
            await asyncio.sleep(0.05)


def stored_files(server: RunningServer) -> list[Path]:
    """Every file in the blob store and its temp directory."""
    found = []
    for sub in ("blobs", "tmp"):
        root = server.data_dir / sub
        found += [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
    return found


async def count_rows(server: RunningServer) -> dict[str, int]:
    """Row counts of every table an upload writes."""
    assert server.service.runtime is not None
    counts = {}
    async with server.service.runtime.db.reading() as conn:
        for table in (t.uploads, t.documents, t.annotations, t.tasks, t.jobs):
            counts[table.name] = (
                await conn.execute(sa.select(sa.func.count()).select_from(table))
            ).scalar_one()
    return counts


async def set_queue_status(server: RunningServer, queue_id: int, status: str) -> None:
    assert server.service.runtime is not None
    async with server.service.runtime.db.transaction() as conn:
        await conn.execute(t.queues.update().where(t.queues.c.id == queue_id).values(status=status))


async def set_queue_settings(
    server: RunningServer, queue_id: int, settings: dict[str, Any]
) -> None:
    assert server.service.runtime is not None
    async with server.service.runtime.db.transaction() as conn:
        await conn.execute(
            t.queues.update().where(t.queues.c.id == queue_id).values(settings=settings)
        )


async def add_queue(server: RunningServer, name: str) -> int:
    """A second queue in the organization, made the way bootstrap and the API make queues."""
    from postroom.domain.queues import insert_queue

    assert server.service.runtime is not None
    async with server.service.runtime.db.transaction() as conn:
        schema_id = (await conn.execute(sa.select(t.schemas.c.id).limit(1))).scalar_one()
        return await insert_queue(
            conn, 1, name=name, schema_id=schema_id, workspace_id=None, status="active"
        )


async def eventually(condition: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    """Wait until `condition()` holds (something the server does in the background)."""
    async with asyncio.timeout(timeout_s):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)
    raise AssertionError(what)
