"""Small real files (PDF, PNG, TIFF) and helpers to upload them to a running service.

`submit` uploads over real HTTP (`POST /queues/{id}/upload`, multipart); `settled` polls the
annotation over HTTP until the pipeline has moved it out of `importing`.
"""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import aiohttp
import sqlalchemy as sa

from postroom.db import tables as t
from postroom.runtime import Runtime
from tests.conftest import Api


def make_pdf(pages: int = 1, *, password: str | None = None) -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    if password is not None:
        writer.encrypt(user_password=password, owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_image(fmt: str = "PNG", size: tuple[int, int] = (320, 200), frames: int = 1) -> bytes:
    from PIL import Image

    images = [Image.new("RGB", size, (200, 30 * i % 255, 40)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, format=fmt, save_all=frames > 1, append_images=images[1:])
    return out.getvalue()


async def submit(
    api: Api,
    files: list[tuple[str, bytes]],
    *,
    queue_id: int = 1,
    values: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> list[int]:
    """Upload files to a queue over HTTP (multipart, like curl -F); returns the annotation ids."""
    form = aiohttp.FormData()
    for name, data in files:
        form.add_field("content", data, filename=name, content_type="application/octet-stream")
    if values is not None:
        form.add_field("values", json.dumps(values))
    if metadata is not None:
        form.add_field("metadata", json.dumps(metadata))
    _status, body = await api.post(f"/queues/{queue_id}/upload", data=form, expect=201)
    return [int(result["annotation"].rsplit("/", 1)[1]) for result in body["results"]]


async def upload_task(api: Api, files: list[tuple[str, bytes]], *, queue_id: int = 1) -> str:
    """Upload through `POST /uploads?queue=` (202); returns the task URL."""
    form = aiohttp.FormData()
    for name, data in files:
        form.add_field("content", data, filename=name, content_type="application/octet-stream")
    _status, body = await api.post(
        "/uploads", params={"queue": str(queue_id)}, data=form, expect=202
    )
    return str(body["url"])


async def task_outcome(api: Api, task_url: str, *, within: float = 30.0) -> dict[str, Any]:
    """The task once it is no longer running (polled over HTTP with no_redirect)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        _status, task = await api.get(task_url, params={"no_redirect": "true"}, expect=200)
        if task["status"] != "running":
            return task  # type: ignore[no-any-return]
        assert loop.time() < deadline, f"task {task_url} still running"
        await asyncio.sleep(0.05)


async def update_queue(svc: Runtime, queue_id: int = 1, **values: Any) -> None:
    async with svc.db.transaction() as conn:
        await conn.execute(t.queues.update().where(t.queues.c.id == queue_id).values(**values))


async def settled(api: Api, annotation_id: int, *, within: float = 30.0) -> dict[str, Any]:
    """The annotation once it has left `importing` (polled over HTTP)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        _status, body = await api.get(f"/annotations/{annotation_id}", expect=200)
        if body["status"] != "importing":
            return body  # type: ignore[no-any-return]
        assert loop.time() < deadline, f"annotation {annotation_id} still importing"
        await asyncio.sleep(0.05)


async def job_rows(svc: Runtime, annotation_id: int) -> list[Any]:
    async with svc.db.reading() as conn:
        return list(
            (
                await conn.execute(sa.select(t.jobs).where(t.jobs.c.annotation_id == annotation_id))
            ).all()
        )


def datapoint_values(content: list[dict[str, Any]]) -> dict[str, Any]:
    from postroom.domain.annotation_content import datapoints

    return {node["schema_id"]: node["content"] for node in datapoints(content)}
