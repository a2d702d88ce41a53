"""The annotation lifecycle: the one table of allowed status transitions, and the guarded move.

Every status change of an annotation — by a reviewer, the pipeline, an export, a background duty —
goes through `move` (one annotation; 409 `conflict_status` naming the current status when the
move is not allowed) or `move_where` (many; the ones not in an allowed status are left alone).
Both run one `UPDATE … WHERE status IN (…)` in the caller's transaction, so a concurrent change
can never be overwritten: the guard re-checks the status the row has at that moment.

Each move stamps the fields of its target (`confirmed_at`/`confirmed_by`, `exported_at`, …) and
`modified_at`/`modified_by`. Entering `exporting` enqueues an `export` job in the same
transaction, so no annotation waits in `exporting` without a job that moves it on; callers wake
the workers after the commit (`svc.jobs_available.set()`).
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

STATUSES: tuple[str, ...] = (
    "created",
    "importing",
    "failed_import",
    "split",
    "to_review",
    "reviewing",
    "in_workflow",
    "confirmed",
    "rejected",
    "exporting",
    "exported",
    "failed_export",
    "postponed",
    "deleted",
    "purged",
)

# Every allowed transition, source → targets. `purged` is terminal. A data-retention purge
# (queue.document_lifetime) may take any settled annotation to `purged`; the ones being worked
# on by a machine (importing, exporting) are purged once they settle.
TRANSITIONS: Mapping[str, frozenset[str]] = {
    "created": frozenset({"importing", "deleted", "purged"}),
    "importing": frozenset(
        {"to_review", "failed_import", "split", "confirmed", "exporting", "exported", "deleted"}
    ),
    "failed_import": frozenset({"deleted", "purged"}),
    "split": frozenset({"deleted", "purged"}),
    "to_review": frozenset(
        {
            "reviewing",
            "postponed",
            "confirmed",
            "exporting",
            "exported",
            "rejected",
            "in_workflow",
            "split",
            "deleted",
            "purged",
        }
    ),
    # reviewing → reviewing: the reviewer who holds it starts it again (a reloaded page).
    "reviewing": frozenset(
        {
            "reviewing",
            "to_review",
            "postponed",
            "confirmed",
            "exporting",
            "exported",
            "rejected",
            "in_workflow",
            "split",
            "deleted",
            "purged",
        }
    ),
    "in_workflow": frozenset(
        {"to_review", "confirmed", "exporting", "exported", "rejected", "deleted", "purged"}
    ),
    "confirmed": frozenset(
        {
            "reviewing",
            "to_review",
            "postponed",
            "exporting",
            "exported",
            "rejected",
            "deleted",
            "purged",
        }
    ),
    "rejected": frozenset({"reviewing", "to_review", "postponed", "deleted", "purged"}),
    "exporting": frozenset({"exported", "failed_export"}),
    "exported": frozenset({"deleted", "purged"}),
    "failed_export": frozenset(
        {"reviewing", "to_review", "postponed", "exporting", "exported", "deleted", "purged"}
    ),
    "postponed": frozenset({"reviewing", "to_review", "rejected", "deleted", "purged"}),
    # A deleted annotation can be restored (to_review) until it is purged.
    "deleted": frozenset({"to_review", "purged"}),
    "purged": frozenset(),
}

# Targets a client may set with a bare `PATCH {"status": …}`. The others need their own action:
# reviewing (start: it takes a session), purged (purge_deleted: it wipes data), split (split),
# importing/created (only the intake creates them).
PATCH_TARGETS: frozenset[str] = frozenset(
    {
        "to_review",
        "postponed",
        "confirmed",
        "rejected",
        "in_workflow",
        "exporting",
        "exported",
        "failed_export",
        "deleted",
    }
)

# Where `start` takes an annotation from when the caller names no statuses (the reference).
START_DEFAULT_STATUSES: tuple[str, ...] = ("to_review", "reviewing", "postponed", "confirmed")

EXPORT_JOB_KIND = "export"


def sources_of(target: str) -> frozenset[str]:
    """Every status an annotation may be moved to `target` from."""
    return frozenset(source for source, targets in TRANSITIONS.items() if target in targets)


def parse_statuses(value: Any, field: str) -> list[str]:
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
    return value


def stamps(target: str, actor_id: int | None, now: datetime) -> dict[str, Any]:
    """The column values a move to `target` sets besides the status itself."""
    a = t.annotations.c
    values: dict[str, Any] = {"status": target, "modified_at": now}
    if actor_id is not None:
        values["modified_by_id"] = actor_id
    match target:
        case "reviewing":
            # Evaluated against the row before the update: where the session started from
            # (kept when the holder starts it again, so `cancel` still goes back there).
            previous = sa.case((a.status == "reviewing", a.previous_status), else_=a.status)
            values.update(modifier_id=actor_id, assigned_at=now, previous_status=previous)
        case "confirmed":
            values.update(confirmed_at=now, confirmed_by_id=actor_id)
        case "exported":
            values.update(exported_at=now, exported_by_id=actor_id)
        case "failed_export":
            values.update(export_failed_at=now)
        case "deleted":
            values.update(deleted_at=now, deleted_by_id=actor_id)
        case "rejected":
            values.update(rejected_at=now, rejected_by_id=actor_id)
        case "purged":
            values.update(purged_at=now, purged_by_id=actor_id)
    return values


def _allowed_sources(target: str, only_from: Iterable[str] | None) -> list[str]:
    if target not in TRANSITIONS:
        raise ValueError(f"unknown annotation status {target!r}")
    allowed = sources_of(target)
    if only_from is not None:
        allowed = allowed & frozenset(only_from)
    return sorted(allowed)


async def move(
    conn: AsyncConnection,
    annotation_id: int,
    target: str,
    *,
    actor_id: int | None,
    only_from: Iterable[str] | None = None,
    where: Iterable[sa.ColumnElement[bool]] = (),
    values: Mapping[str, Any] | None = None,
) -> None:
    """Move one annotation to `target` if its status allows it (and `only_from` names it);
    otherwise ConflictStatus naming its current status. `where` adds guards (ownership, …);
    `values` sets more columns in the same statement."""
    a = t.annotations.c
    sources = _allowed_sources(target, only_from)
    now = utcnow()
    stmt = (
        t.annotations.update()
        .where(a.id == annotation_id, a.status.in_(sources), *where)
        .values({**stamps(target, actor_id, now), **(values or {})})
    )
    result = await conn.execute(stmt)
    if result.rowcount != 1:
        await _raise_refused(conn, annotation_id, target)
    if target == "exporting":
        await enqueue_export_jobs(conn, [annotation_id], actor_id, now)


async def move_where(
    conn: AsyncConnection,
    target: str,
    *where: sa.ColumnElement[bool],
    actor_id: int | None,
    only_from: Iterable[str] | None = None,
    values: Mapping[str, Any] | None = None,
) -> list[int]:
    """Move every annotation matching `where` whose status allows it; returns the moved ids."""
    a = t.annotations.c
    sources = _allowed_sources(target, only_from)
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
    if target == "exporting" and moved:
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
                "kind": EXPORT_JOB_KIND,
                "annotation_id": annotation_id,
                "payload": {"actor_id": actor_id},
                "status": "queued",
                "attempts": 0,
                "run_after": now,
                "created_at": now,
            }
            for annotation_id in annotation_ids
        ],
    )


async def _raise_refused(conn: AsyncConnection, annotation_id: int, target: str) -> None:
    a = t.annotations.c
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
