"""The annotation lifecycle: the guarded move of one annotation, or of many, to another status.

The allowed transitions are the one table `postroom.status.TRANSITIONS`. Every status change of
an annotation — by a reviewer, the pipeline, an export, a background duty — goes through `move`
(one annotation; 409 `conflict_status` naming the current status when the move is not allowed)
or `move_where` (many; the ones not in an allowed status are left alone). Both run one
`UPDATE … WHERE status IN (…)` in the caller's transaction, so a concurrent change can never be
overwritten: the guard re-checks the status the row has at that moment.

Each move stamps the fields of its target (`confirmed_at`/`confirmed_by`, `exported_at`, …) and
`modified_at`/`modified_by`. Entering `exporting` enqueues an `export` job in the same
transaction, so no annotation waits in `exporting` without a job that moves it on; callers wake
the workers after the commit (`rt.jobs_available.set()`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.clock import utcnow
from postroom.db import tables as t
from postroom.errors import BadRequest, ConflictStatus, NotFound
from postroom.status import TRANSITIONS, AnnotationStatus, JobKind, JobStatus, sources_of

A = AnnotationStatus
STATUSES: tuple[AnnotationStatus, ...] = tuple(AnnotationStatus)

# Where `start` takes an annotation from when the caller names no statuses (the reference).
START_DEFAULT_STATUSES: tuple[AnnotationStatus, ...] = (
    A.TO_REVIEW,
    A.REVIEWING,
    A.POSTPONED,
    A.CONFIRMED,
)

a = t.annotations.c


def parse_statuses(value: Any, field: str) -> list[AnnotationStatus]:
    """A list of known status names (a JSON list or a comma string), or 400 naming `field`."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"{field}: expected a list of annotation statuses.")
    unknown = [v for v in value if v not in TRANSITIONS]
    if unknown:
        raise BadRequest(
            f"{field}: unknown status {unknown[0]!r} (allowed: {', '.join(STATUSES)})."
        )
    return [AnnotationStatus(v) for v in value]


def stamps(target: AnnotationStatus, actor_id: int | None, now: datetime) -> dict[str, Any]:
    """The column values a move to `target` sets besides the status itself."""
    values: dict[str, Any] = {"status": target, "modified_at": now}
    if actor_id is not None:
        values["modified_by_id"] = actor_id
    match target:
        case A.REVIEWING:
            # Evaluated against the row before the update: where the session started from
            # (kept when the holder starts it again, so `cancel` still goes back there).
            previous = sa.case((a.status == A.REVIEWING, a.previous_status), else_=a.status)
            values.update(modifier_id=actor_id, assigned_at=now, previous_status=previous)
        case A.CONFIRMED:
            values.update(confirmed_at=now, confirmed_by_id=actor_id)
        case A.EXPORTED:
            values.update(exported_at=now, exported_by_id=actor_id)
        case A.FAILED_EXPORT:
            values.update(export_failed_at=now)
        case A.DELETED:
            values.update(deleted_at=now, deleted_by_id=actor_id)
        case A.REJECTED:
            values.update(rejected_at=now, rejected_by_id=actor_id)
        case A.PURGED:
            values.update(purged_at=now, purged_by_id=actor_id)
    return values


def allowed_sources(
    target: AnnotationStatus, only_from: Iterable[AnnotationStatus] | None = None
) -> list[AnnotationStatus]:
    """The statuses a move to `target` may start from (narrowed to `only_from` when given)."""
    if target not in TRANSITIONS:
        raise ValueError(f"unknown annotation status {target!r}")
    allowed = sources_of(target)
    if only_from is not None:
        allowed = allowed & frozenset(only_from)
    return sorted(allowed)


async def move(
    conn: AsyncConnection,
    annotation_id: int,
    target: AnnotationStatus,
    *,
    actor_id: int | None,
    only_from: Iterable[AnnotationStatus] | None = None,
    where: Iterable[sa.ColumnElement[bool]] = (),
    values: Mapping[str, Any] | None = None,
) -> None:
    """Move one annotation to `target` if its status allows it (and `only_from` names it);
    otherwise ConflictStatus naming its current status. `where` adds guards (ownership, …);
    `values` sets more columns in the same statement."""
    sources = allowed_sources(target, only_from)
    now = utcnow()
    stmt = (
        t.annotations.update()
        .where(a.id == annotation_id, a.status.in_(sources), *where)
        .values({**stamps(target, actor_id, now), **(values or {})})
    )
    result = await conn.execute(stmt)
    if result.rowcount != 1:
        await _raise_refused(conn, annotation_id, target)
    if target == A.EXPORTING:
        await enqueue_export_jobs(conn, [annotation_id], actor_id, now)


async def move_where(
    conn: AsyncConnection,
    target: AnnotationStatus,
    *where: sa.ColumnElement[bool],
    actor_id: int | None,
    only_from: Iterable[AnnotationStatus] | None = None,
    values: Mapping[str, Any] | None = None,
) -> list[int]:
    """Move every annotation matching `where` whose status allows it; returns the moved ids."""
    sources = allowed_sources(target, only_from)
    if not sources:
        return []
    now = utcnow()
    stmt = (
        t.annotations.update()
        .where(a.status.in_(sources), *where)
        .values({**stamps(target, actor_id, now), **(values or {})})
        .returning(a.id)
    )
    moved = [int(i) for i in (await conn.execute(stmt)).scalars()]
    if target == A.EXPORTING and moved:
        await enqueue_export_jobs(conn, moved, actor_id, now)
    return moved


async def enqueue_export_jobs(
    conn: AsyncConnection, annotation_ids: Collection[int], actor_id: int | None, now: datetime
) -> None:
    """One `export` job per annotation; it moves the annotation exporting → exported."""
    await conn.execute(
        t.jobs.insert(),
        [
            {
                "kind": JobKind.EXPORT,
                "annotation_id": annotation_id,
                "payload": {"actor_id": actor_id},
                "status": JobStatus.QUEUED,
                "attempts": 0,
                "run_after": now,
                "created_at": now,
            }
            for annotation_id in annotation_ids
        ],
    )


async def _raise_refused(
    conn: AsyncConnection, annotation_id: int, target: AnnotationStatus
) -> None:
    current = (
        await conn.execute(sa.select(a.status).where(a.id == annotation_id))
    ).scalar_one_or_none()
    if current is None:
        raise NotFound(f"Annotation {annotation_id} does not exist.")
    if target not in TRANSITIONS.get(current, frozenset()):
        raise ConflictStatus(
            f"Annotation {annotation_id} is {current}; it cannot be moved to {target}."
        )
    raise ConflictStatus(
        f"Annotation {annotation_id} is {current}; that status does not allow this action."
    )
