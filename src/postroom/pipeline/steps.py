"""The import steps, in order. Each is a small async function of one `ImportContext`.

A step reads what earlier steps left in the context and adds its own result. It raises
`ImportFailed(message)` when the document cannot be imported (the annotation ends
`failed_import` with that message) and `Retry` for a transient fault. Blocking work (file
parsing) runs in a thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiofiles.os

from postroom.clock import utcnow
from postroom.domain.annotation_content import build_content
from postroom.domain.jobs import ClaimedJob
from postroom.pipeline import ImportFailed, Retry
from postroom.pipeline.pages import Pages, image_pages, pdf_pages
from postroom.runtime import Runtime
from postroom.status import AnnotationStatus

# Image types Pillow reads for their size (TIFF is counted as pages by `count_pages`).
MEASURED_IMAGES = ("image/png", "image/jpeg", "image/gif", "image/bmp", "image/webp")


@dataclass
class ImportContext:
    """What one import knows: the records it starts from, and what the steps found."""

    rt: Runtime
    job: ClaimedJob
    annotation_id: int
    annotation_url: str
    arrived_at: datetime
    upload_id: int | None
    blob_key: str | None
    mime_type: str
    automation_level: str
    use_confirmed_state: bool
    schema_content: list[dict[str, Any]]
    rir_values: dict[str, Any]
    # Set by the intake when the queue refused the type (the file-type rule, applied once there).
    rejected_reason: str | None = None
    # Filled in by the steps:
    pages: Pages | None = None
    content: list[dict[str, Any]] | None = None
    status: AnnotationStatus = AnnotationStatus.TO_REVIEW
    automated: bool = False
    stamps: dict[str, datetime] = field(default_factory=dict)

    async def stored_path(self) -> Path:
        """The document's bytes on disk; ImportFailed when they are gone (purged)."""
        if not self.blob_key:
            raise ImportFailed("The document's file is no longer stored.")
        path = self.rt.blobs.path_of(self.blob_key)
        try:
            exists = await aiofiles.os.path.exists(path)
        except OSError as exc:
            raise Retry(reason=f"storage not readable: {exc}") from None
        if not exists:
            raise ImportFailed("The document's file is missing from storage.")
        return path


Step = Callable[[ImportContext], Awaitable[None]]


async def verify_type(ctx: ImportContext) -> None:
    """A file whose type the queue refused at intake (`rejected_reason`) is not imported."""
    if ctx.rejected_reason is not None:
        raise ImportFailed(ctx.rejected_reason)


async def count_pages(ctx: ImportContext) -> None:
    """Pages of a PDF (pypdf) or a TIFF (Pillow frames); an unreadable file fails the import."""
    if ctx.mime_type == "application/pdf":
        ctx.pages = await asyncio.to_thread(pdf_pages, await ctx.stored_path())
    elif ctx.mime_type == "image/tiff":
        ctx.pages = await asyncio.to_thread(image_pages, await ctx.stored_path())


async def measure_image(ctx: ImportContext) -> None:
    """Width and height of a single-page image, in pixels."""
    if ctx.mime_type in MEASURED_IMAGES:
        ctx.pages = await asyncio.to_thread(image_pages, await ctx.stored_path())


async def fill_content(ctx: ImportContext) -> None:
    """The annotation content from the queue schema, datapoints initialised from intake values."""
    ctx.content = build_content(
        ctx.schema_content,
        ctx.rir_values,
        annotation_id=ctx.annotation_id,
        annotation_url=ctx.annotation_url,
    )


async def automate(ctx: ImportContext) -> None:
    """`automation_level=always`: skip review, as if confirmed (`confirmed` with the queue's
    confirmed state, else `exported`)."""
    if ctx.automation_level != "always":
        return
    now = utcnow()
    ctx.automated = True
    ctx.stamps["confirmed_at"] = now
    if ctx.use_confirmed_state:
        ctx.status = AnnotationStatus.CONFIRMED
    else:
        ctx.status = AnnotationStatus.EXPORTED
        ctx.stamps["exported_at"] = now


STEPS: tuple[Step, ...] = (verify_type, count_pages, measure_image, fill_content, automate)
