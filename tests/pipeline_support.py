"""Small real files (PDF, PNG, TIFF) and helpers to feed them to a running service's intake.

`submit` does what a receiver does: stores the bytes as a durable blob, sniffs their type,
calls `intake.accept.accept_files` in one transaction and wakes the workers. `settled` polls
the annotation over real HTTP until the pipeline has moved it out of `importing`.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

import sqlalchemy as sa

from postroom.db import tables as t
from postroom.intake.accept import StoredFile, Submission, accept_files
from postroom.intake.sniff import sniff_mime
from postroom.services import Services
from tests.conftest import Api


def make_pdf(pages: int = 1) -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
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
    svc: Services,
    files: list[tuple[str, bytes]],
    *,
    queue_id: int = 1,
    values: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> list[int]:
    """Accept files into a queue as the first admin; returns the new annotation ids."""
    stored = []
    for name, data in files:
        writer = svc.blobs.open_writer()
        await writer.write(data)
        key = await writer.commit()
        mime = await asyncio.to_thread(sniff_mime, data[:8192], svc.blobs.path_of(key))
        stored.append(StoredFile(key, len(data), mime, name))
    async with svc.db.transaction() as conn:
        org_id, user_id = (
            await conn.execute(
                sa.select(t.users.c.organization_id, t.users.c.id).order_by(t.users.c.id).limit(1)
            )
        ).one()
        accepted = await accept_files(
            conn,
            Submission(
                organization_id=org_id,
                queue_id=queue_id,
                creator_id=user_id,
                files=stored,
                metadata=metadata or {},
                rir_values=values or {},
            ),
        )
    svc.jobs_available.set()
    return accepted.annotation_ids


async def update_queue(svc: Services, queue_id: int = 1, **values: Any) -> None:
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


async def job_rows(svc: Services, annotation_id: int) -> list[Any]:
    async with svc.db.reading() as conn:
        return list(
            (
                await conn.execute(sa.select(t.jobs).where(t.jobs.c.annotation_id == annotation_id))
            ).all()
        )


def datapoint_values(content: list[dict[str, Any]]) -> dict[str, Any]:
    from postroom.content import datapoints

    return {node["schema_id"]: node["content"] for node in datapoints(content)}
