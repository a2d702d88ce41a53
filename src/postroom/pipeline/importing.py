"""The `import` job: load an annotation in `importing`, run `STEPS`, record the outcome.

The outcome (status, content, pages, messages, automation stamps) is written in one short
transaction together with marking the job done, and only if the annotation is still
`importing`, so a retried or reclaimed job can never move an annotation twice. The same
transaction turns the upload's task `succeeded` (or `failed`, when nothing could be imported)
once none of the upload's annotations is importing any more.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom import logs, metrics
from postroom.db import tables as t
from postroom.db.commits import group_commit
from postroom.domain.annotation_content import build_content
from postroom.domain.jobs import ClaimedJob, mark_done
from postroom.domain.lifecycle import move_where
from postroom.pipeline import ImportFailed, Retry
from postroom.pipeline.steps import STEPS, ImportContext
from postroom.runtime import Runtime
from postroom.status import AnnotationStatus, TaskStatus

IMPORTING, FAILED_IMPORT = AnnotationStatus.IMPORTING, AnnotationStatus.FAILED_IMPORT

log = logging.getLogger("postroom.pipeline")


def error_message(text: str) -> dict[str, Any]:
    """One entry of an annotation's `messages`."""
    return {"type": "error", "content": text, "schema_id": None}


async def run_import(rt: Runtime, job: ClaimedJob) -> None:
    ctx = await load_context(rt, job)
    if ctx is None:
        # Deleted, or already moved on (an earlier run committed): nothing left to do.
        async def finish(conn: AsyncConnection) -> None:
            await mark_done(conn, job)

        await group_commit(rt.db).run(finish)
        return
    try:
        for step in STEPS:
            try:
                await step(ctx)
            except (ImportFailed, Retry) as exc:
                exc.step = step.__name__
                raise
    except ImportFailed as failure:
        metrics.JOB_FAILURES.labels(kind=job.kind, step=failure.step or "import").inc()
        await record_failure(rt, job, ctx, failure.message)
        return
    await record_success(rt, job, ctx)


async def load_context(rt: Runtime, job: ClaimedJob) -> ImportContext | None:
    a, d, q, s = t.annotations, t.documents, t.queues, t.schemas
    stmt = (
        sa.select(
            a.c.id,
            a.c.arrived_at,
            a.c.upload_id,
            d.c.s3_name,
            d.c.mime_type,
            q.c.automation_level,
            q.c.use_confirmed_state,
            s.c.content.label("schema_content"),
        )
        .join(d, d.c.id == a.c.document_id)
        .join(q, q.c.id == a.c.queue_id)
        .join(s, s.c.id == a.c.schema_id)
        .where(a.c.id == job.annotation_id, a.c.status == IMPORTING)
    )
    async with rt.db.reading() as conn:
        row = (await conn.execute(stmt)).first()
    if row is None:
        return None
    rir_values = job.payload.get("rir_values")
    return ImportContext(
        rt=rt,
        job=job,
        annotation_id=row.id,
        annotation_url=rt.urls.to("annotations", row.id),
        arrived_at=row.arrived_at,
        upload_id=row.upload_id,
        blob_key=row.s3_name,
        mime_type=row.mime_type,
        automation_level=row.automation_level,
        use_confirmed_state=bool(row.use_confirmed_state),
        schema_content=row.schema_content if isinstance(row.schema_content, list) else [],
        rir_values=rir_values if isinstance(rir_values, dict) else {},
        rejected_reason=job.payload.get("rejected_reason"),
    )


def _outcome(ctx: ImportContext) -> dict[str, Any]:
    return {
        "pages": [page.as_json() for page in ctx.pages.sizes] if ctx.pages else [],
        "page_count": ctx.pages.count if ctx.pages else None,
        "content": ctx.content if ctx.content is not None else _content_of(ctx),
    }


def _content_of(ctx: ImportContext) -> list[dict[str, Any]]:
    # A failed import still gets its content tree, so reviewers see the values it came with.
    return build_content(
        ctx.schema_content,
        ctx.rir_values,
        annotation_id=ctx.annotation_id,
        annotation_url=ctx.annotation_url,
    )


async def record_success(rt: Runtime, job: ClaimedJob, ctx: ImportContext) -> None:
    values = {**_outcome(ctx), "automated": ctx.automated, "messages": [], **ctx.stamps}
    await _finish(rt, job, ctx, ctx.status, values, mime_type=ctx.mime_type)


async def record_failure(rt: Runtime, job: ClaimedJob, ctx: ImportContext, message: str) -> None:
    values = {**_outcome(ctx), "messages": [error_message(message)]}
    await _finish(rt, job, ctx, FAILED_IMPORT, values, reason=message)


async def _finish(
    rt: Runtime,
    job: ClaimedJob,
    ctx: ImportContext,
    target: AnnotationStatus,
    values: dict[str, Any],
    **logged: Any,
) -> None:
    """Record the outcome (one unit of the group commit), then log and count it."""

    async def write(conn: AsyncConnection) -> None:
        await mark_done(conn, job)  # first: LeaseLost before any change
        await _lock_task(conn, ctx.upload_id)
        if await _leave_importing(conn, ctx.annotation_id, target, values):
            await settle_task(conn, ctx.upload_id)

    await group_commit(rt.db).run(write, order=ctx.upload_id or 0)
    logs.event(
        log,
        "import finished",
        annotation=ctx.annotation_id,
        upload=ctx.upload_id,
        job=job.id,
        status=target,
        **logged,
    )
    metrics.observe_import_latency(ctx.arrived_at, target)


async def give_up_import(conn: AsyncConnection, rt: Runtime, job: ClaimedJob, reason: str) -> None:
    """After the last attempt (the job is being marked failed in `conn`): the annotation ends
    failed_import, saying why."""
    if job.annotation_id is None:
        return
    upload_id = (
        await conn.execute(
            sa.select(t.annotations.c.upload_id).where(t.annotations.c.id == job.annotation_id)
        )
    ).scalar_one_or_none()
    await _lock_task(conn, upload_id)
    text = f"Import failed after {job.attempts} attempts: {reason}"
    moved = await _leave_importing(
        conn, job.annotation_id, FAILED_IMPORT, {"messages": [error_message(text)]}
    )
    if moved:
        await settle_task(conn, upload_id)


async def _leave_importing(
    conn: AsyncConnection, annotation_id: int, target: AnnotationStatus, values: dict[str, Any]
) -> bool:
    """Move the annotation out of `importing` (the lifecycle's guarded move); False when it had
    already left (deleted meanwhile, or finished by an earlier run)."""
    a = t.annotations.c
    moved = await move_where(
        conn, target, a.id == annotation_id, actor_id=None, only_from=(IMPORTING,), values=values
    )
    return bool(moved)


async def _lock_task(conn: AsyncConnection, upload_id: int | None) -> None:
    # Two workers finishing the last two annotations of one upload must not both still see the
    # other's annotation as importing (READ COMMITTED): the task row serialises them. (SQLite
    # renders no lock: its write transactions run one at a time anyway.)
    if upload_id is None:
        return
    await conn.execute(
        sa.select(t.tasks.c.id).where(t.tasks.c.upload_id == upload_id).with_for_update()
    )


async def settle_task(conn: AsyncConnection, upload_id: int | None) -> None:
    """Finish the upload's running task once none of its annotations is importing: `succeeded`,
    or `failed` (with the first reason as `detail`) when every annotation failed to import."""
    if upload_id is None:
        return
    a = t.annotations.c
    of_upload = a.upload_id == upload_id
    pending = await conn.execute(sa.select(a.id).where(of_upload, a.status == IMPORTING).limit(1))
    if pending.first() is not None:
        return
    imported = await conn.execute(
        sa.select(a.id).where(of_upload, a.status != FAILED_IMPORT).limit(1)
    )
    values: dict[str, Any] = {"status": TaskStatus.SUCCEEDED}
    if imported.first() is None:
        messages = (
            await conn.execute(sa.select(a.messages).where(of_upload).order_by(a.id).limit(1))
        ).scalar_one_or_none() or []
        first = messages[0].get("content") if messages and isinstance(messages[0], dict) else None
        values = {
            "status": TaskStatus.FAILED,
            "detail": first or "The documents could not be imported.",
        }
    tk = t.tasks.c
    await conn.execute(
        t.tasks.update()
        .where(tk.upload_id == upload_id, tk.status == TaskStatus.RUNNING)
        .values(**values)
    )
