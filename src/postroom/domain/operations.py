"""What operators look at and act on: each queue's intake and backlog, the failed imports and
exports, and retrying them.

- `overview`: per visible queue its inbox address, counts by status, how many documents arrived
  in each of the last 24 hours (one grouped query, no per-hour round trips) and its failures.
- `failures`: the annotations that ended `failed_import` or `failed_export`, with the reason.
- `retry`: put failed annotations back in the pipeline through the lifecycle's guarded moves —
  `failed_import → importing` with a new import job (the payload of the last one: the values it
  came with, the type verdict of the intake), `failed_export → exporting` (which enqueues the
  export job itself). Admins and managers only.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.clock import utcnow
from postroom.db import tables as t
from postroom.domain import jobs, lifecycle
from postroom.domain.access import Actor, visible_queues_clause
from postroom.domain.documents import DOCUMENTS
from postroom.domain.listing import Filter, Listing, Page, PageRequest, fetch_page
from postroom.errors import ConflictStatus
from postroom.runtime import Runtime
from postroom.status import AnnotationStatus, JobKind, QueueStatus

A = AnnotationStatus
FAILED = (A.FAILED_IMPORT, A.FAILED_EXPORT)
HOURS = 24
a, q, d, i = t.annotations.c, t.queues.c, t.documents.c, t.inboxes.c


@dataclass(frozen=True)
class QueueOverview:
    id: int
    name: str
    status: str
    inbox_email: str | None
    counts: dict[str, int]
    hourly: list[int]  # documents arrived per hour, oldest first; the last is the current hour

    @property
    def failures(self) -> int:
        return sum(self.counts.get(s, 0) for s in FAILED)

    @property
    def arrived_24h(self) -> int:
        return sum(self.hourly)


async def overview(rt: Runtime, who: Actor) -> list[QueueOverview]:
    """Every queue the actor sees (deleted ones aside), with its counts and hourly intake."""
    stmt = (
        sa.select(q.id, q.name, q.status, i.email)
        .select_from(t.queues.outerjoin(t.inboxes, i.id == q.inbox_id))
        .where(
            q.organization_id == who.organization_id,
            visible_queues_clause(who, q.id),
            q.status != QueueStatus.DELETION_IN_PROGRESS,
        )
        .order_by(q.id)
    )
    async with rt.db.reading() as conn:
        queues = (await conn.execute(stmt)).all()
        ids = [row.id for row in queues]
        counts = await _counts(conn, ids)
        hourly = await _hourly(conn, ids)
    return [
        QueueOverview(
            id=row.id,
            name=row.name,
            status=row.status,
            inbox_email=row.email,
            counts=counts.get(row.id, {}),
            hourly=hourly.get(row.id, [0] * HOURS),
        )
        for row in queues
    ]


async def _counts(conn: AsyncConnection, queue_ids: list[int]) -> dict[int, dict[str, int]]:
    found: dict[int, dict[str, int]] = {}
    if not queue_ids:
        return found
    rows = await conn.execute(
        sa.select(a.queue_id, a.status, sa.func.count())
        .where(a.queue_id.in_(queue_ids))
        .group_by(a.queue_id, a.status)
    )
    for queue_id, status, number in rows:
        found.setdefault(queue_id, {})[status] = int(number)
    return found


async def _hourly(conn: AsyncConnection, queue_ids: list[int]) -> dict[int, list[int]]:
    """Arrivals per queue in each of the last 24 hours (the current, partial hour last)."""
    if not queue_ids:
        return {}
    now = utcnow()
    top = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    edges = [top - timedelta(hours=HOURS - n) for n in range(HOURS + 1)]
    buckets = [
        sa.func.sum(sa.case((sa.and_(a.arrived_at >= lo, a.arrived_at < hi), 1), else_=0))
        for lo, hi in itertools.pairwise(edges)
    ]
    rows = await conn.execute(
        sa.select(a.queue_id, *buckets)
        .where(a.queue_id.in_(queue_ids), a.arrived_at >= edges[0])
        .group_by(a.queue_id)
    )
    return {row[0]: [int(n or 0) for n in row[1:]] for row in rows}


def _reason(messages: Any) -> str:
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict) and message.get("content"):
                return str(message["content"])
    return ""


FAILURES = Listing(
    filters=(
        Filter("queue", a.queue_id),
        Filter("status", a.status, "strs"),
        Filter("file_name", d.original_file_name, "icontains"),
    ),
    ordering={"modified_at": a.modified_at, "id": a.id},
    default=(a.modified_at.desc(),),
    tiebreak=(a.id.desc(),),
)


async def failures(
    rt: Runtime, who: Actor, query: Mapping[str, str], page: PageRequest
) -> Page[dict[str, Any]]:
    """Failed imports and exports the actor sees, most recent first, each with its reason."""
    stmt: sa.Select[Any] = (
        sa.select(
            a.id,
            a.status,
            a.messages,
            a.modified_at,
            a.arrived_at,
            a.document_id,
            a.queue_id,
            q.name.label("queue_name"),
            d.original_file_name,
        )
        .join(t.queues, q.id == a.queue_id)
        .join(t.documents, d.id == a.document_id)
        .where(
            a.status.in_(FAILED),
            a.organization_id == who.organization_id,
            visible_queues_clause(who, a.queue_id),
        )
    )
    stmt = FAILURES.apply(stmt, query)
    async with rt.db.reading() as conn:
        rows, total = await fetch_page(conn, stmt, page)
        errors = await _last_job_errors(conn, [row.id for row in rows])
    items = []
    for row in rows:
        item = dict(row._mapping)
        item["reason"] = _reason(row.messages) or errors.get(row.id, "")
        items.append(item)
    return Page(items, total, page)


async def _last_job_errors(conn: AsyncConnection, annotation_ids: list[int]) -> dict[int, str]:
    j = t.jobs.c
    if not annotation_ids:
        return {}
    rows = await conn.execute(
        sa.select(j.annotation_id, j.last_error)
        .where(j.annotation_id.in_(annotation_ids), j.last_error.is_not(None))
        .order_by(j.id)
    )
    return {row.annotation_id: row.last_error for row in rows}


@dataclass(frozen=True)
class Retried:
    retried: list[int]
    skipped: list[int]  # not failed (any more), or not visible


async def retry(rt: Runtime, who: Actor, annotation_ids: Sequence[int]) -> Retried:
    """Re-queue each failed annotation (one transaction); 403 below manager."""
    who.require_manager()
    retried: list[int] = []
    skipped: list[int] = []
    async with rt.db.transaction() as conn:
        rows = await conn.execute(
            sa.select(a.id, a.status).where(
                a.id.in_(list(annotation_ids)),
                a.organization_id == who.organization_id,
                visible_queues_clause(who, a.queue_id),
            )
        )
        found = {row.id: row.status for row in rows}
        for annotation_id in annotation_ids:
            status = found.get(annotation_id)
            try:
                if status == A.FAILED_IMPORT:
                    await _retry_import(conn, who, annotation_id)
                elif status == A.FAILED_EXPORT:
                    await lifecycle.move(
                        conn, annotation_id, A.EXPORTING, actor_id=who.user_id, only_from=FAILED
                    )
                else:
                    skipped.append(annotation_id)
                    continue
            except ConflictStatus:  # moved on meanwhile
                skipped.append(annotation_id)
                continue
            retried.append(annotation_id)
    if retried:
        rt.jobs_available.set()
    return Retried(retried, skipped)


async def _retry_import(conn: AsyncConnection, who: Actor, annotation_id: int) -> None:
    payload = await jobs.last_payload(conn, JobKind.IMPORT, annotation_id)
    await lifecycle.move(
        conn,
        annotation_id,
        A.IMPORTING,
        actor_id=who.user_id,
        only_from=(A.FAILED_IMPORT,),
        values={"messages": []},
    )
    await jobs.enqueue(conn, JobKind.IMPORT, annotation_id, payload)


async def document_detail(rt: Runtime, who: Actor, document_id: int) -> dict[str, Any]:
    """A document the actor sees (404 otherwise): its row, where it came from, its annotations."""
    async with rt.db.reading() as conn:
        row = await DOCUMENTS.load(conn, who, document_id)
        annotations = await conn.execute(
            sa.select(
                a.id, a.status, a.messages, a.page_count, a.modified_at, q.name.label("queue")
            )
            .join(t.queues, q.id == a.queue_id)
            .where(a.document_id == document_id)
            .order_by(a.id)
        )
        found = [{**r._mapping, "reason": _reason(r.messages)} for r in annotations]
    return {"document": dict(row._mapping), "annotations": found}
