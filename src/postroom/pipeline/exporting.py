"""The `export` job: moves a confirmed annotation on from `exporting` to `exported`.

Confirming on a queue without the confirmed state, `PATCH {"status": "exporting"}` and
`POST /queues/{id}/export?to_status=exporting` all enter `exporting`, and the lifecycle enqueues
this job in the same transaction. Postroom has no connector to call, so the export is finished
as soon as a worker runs the job; the user who asked for it becomes `exported_by`. An annotation
that left `exporting` meanwhile (deleted, say) is left alone. If the job fails for good the
annotation ends `failed_export`.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.db import tables as t
from postroom.domain import lifecycle
from postroom.domain.jobs import ClaimedJob, mark_done
from postroom.runtime import Runtime
from postroom.status import AnnotationStatus


def _actor(job: ClaimedJob) -> int | None:
    actor = job.payload.get("actor_id")
    return actor if isinstance(actor, int) else None


async def run_export(rt: Runtime, job: ClaimedJob) -> None:
    async with rt.db.transaction() as conn:
        if job.annotation_id is not None:
            # No match when it moved on meanwhile (deleted, exported by PATCH, …): nothing to do.
            await lifecycle.move_where(
                conn,
                AnnotationStatus.EXPORTED,
                t.annotations.c.id == job.annotation_id,
                actor_id=_actor(job),
                only_from=[AnnotationStatus.EXPORTING],
            )
        await mark_done(conn, job)


async def give_up_export(conn: AsyncConnection, rt: Runtime, job: ClaimedJob, error: str) -> None:
    if job.annotation_id is None:
        return
    await lifecycle.move_where(
        conn,
        AnnotationStatus.FAILED_EXPORT,
        t.annotations.c.id == job.annotation_id,
        actor_id=None,
        only_from=[AnnotationStatus.EXPORTING],
        values={"messages": [{"type": "error", "content": f"Export failed: {error}"[:500]}]},
    )
