"""The annotation lifecycle table and its guarded moves, on the real database (SQLite or PostgreSQL)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from postroom.db import tables as t
from postroom.domain import lifecycle
from postroom.errors import ConflictStatus, NotFound
from postroom.status import PATCH_TARGETS, TRANSITIONS
from tests.annotation_rows import annotation_row, first_queue, insert_annotations
from tests.conftest import RunningServer


def test_table_names_every_status_and_purged_is_terminal() -> None:
    """Every reference status has a row, every target is a known status, purged goes nowhere."""
    assert set(TRANSITIONS) == set(lifecycle.STATUSES)
    assert len(lifecycle.STATUSES) == 15
    for source, targets in TRANSITIONS.items():
        assert targets <= set(lifecycle.STATUSES), source
    assert TRANSITIONS["purged"] == frozenset()
    assert PATCH_TARGETS.issubset(lifecycle.STATUSES)
    assert {"purged", "reviewing", "importing", "split"}.isdisjoint(PATCH_TARGETS)
    for status in lifecycle.START_DEFAULT_STATUSES:
        assert "reviewing" in TRANSITIONS[status]


def test_every_status_but_created_is_reachable() -> None:
    """Each status except the initial `created` is the target of some transition."""
    reachable = set().union(*TRANSITIONS.values())
    assert set(lifecycle.STATUSES) - reachable == {"created"}


async def test_move_stamps_the_target_fields(server: RunningServer) -> None:
    """Moves stamp confirmed_at/by, rejected_at/by, deleted_at/by and modified_at/by."""
    svc = server.service.runtime
    assert svc is not None
    queue = await first_queue(svc)
    confirm_id, reject_id, delete_id = await insert_annotations(svc, queue, 3)
    async with svc.db.transaction() as conn:
        await lifecycle.move(conn, confirm_id, "confirmed", actor_id=queue.user_id)
        await lifecycle.move(conn, reject_id, "rejected", actor_id=queue.user_id)
        await lifecycle.move(conn, delete_id, "deleted", actor_id=queue.user_id)
    confirmed = await annotation_row(svc, confirm_id)
    assert confirmed.status == "confirmed"
    assert confirmed.confirmed_by_id == queue.user_id and confirmed.confirmed_at is not None
    assert confirmed.modified_by_id == queue.user_id and confirmed.modified_at is not None
    rejected = await annotation_row(svc, reject_id)
    assert rejected.rejected_by_id == queue.user_id and rejected.rejected_at is not None
    deleted = await annotation_row(svc, delete_id)
    assert deleted.deleted_by_id == queue.user_id and deleted.deleted_at is not None


async def test_illegal_move_is_conflict_naming_current_status(server: RunningServer) -> None:
    """exported → reviewing is refused with ConflictStatus naming `exported`; the row is unchanged."""
    svc = server.service.runtime
    assert svc is not None
    queue = await first_queue(svc)
    (annotation_id,) = await insert_annotations(svc, queue, 1, status="exported")
    with pytest.raises(ConflictStatus) as raised:
        async with svc.db.transaction() as conn:
            await lifecycle.move(conn, annotation_id, "reviewing", actor_id=queue.user_id)
    assert "exported" in raised.value.detail
    assert raised.value.code == "conflict_status"
    row = await annotation_row(svc, annotation_id)
    assert row.status == "exported" and row.modifier_id is None


async def test_move_of_missing_annotation_is_not_found(server: RunningServer) -> None:
    """Moving an annotation id that does not exist raises NotFound, not a conflict."""
    svc = server.service.runtime
    assert svc is not None
    with pytest.raises(NotFound):
        async with svc.db.transaction() as conn:
            await lifecycle.move(conn, 987654, "deleted", actor_id=None)


async def test_guard_refuses_a_status_changed_meanwhile(server: RunningServer) -> None:
    """A move restricted to `to_review` fails once another move took the annotation elsewhere."""
    svc = server.service.runtime
    assert svc is not None
    queue = await first_queue(svc)
    (annotation_id,) = await insert_annotations(svc, queue, 1)
    async with svc.db.transaction() as conn:
        await lifecycle.move(conn, annotation_id, "postponed", actor_id=queue.user_id)
    with pytest.raises(ConflictStatus) as raised:
        async with svc.db.transaction() as conn:
            await lifecycle.move(
                conn, annotation_id, "reviewing", actor_id=queue.user_id, only_from=["to_review"]
            )
    assert "postponed" in raised.value.detail


async def test_start_remembers_where_it_came_from_even_when_restarted(
    server: RunningServer,
) -> None:
    """Moving to reviewing sets modifier, assigned_at and previous_status; a restart keeps it."""
    svc = server.service.runtime
    assert svc is not None
    queue = await first_queue(svc)
    (annotation_id,) = await insert_annotations(svc, queue, 1, status="postponed")
    for _ in range(2):
        async with svc.db.transaction() as conn:
            await lifecycle.move(conn, annotation_id, "reviewing", actor_id=queue.user_id)
    row = await annotation_row(svc, annotation_id)
    assert row.status == "reviewing"
    assert row.previous_status == "postponed"
    assert row.modifier_id == queue.user_id and row.assigned_at is not None


async def test_entering_exporting_enqueues_an_export_job(server: RunningServer) -> None:
    """A move to exporting creates a queued `export` job for the annotation in the same transaction."""
    svc = server.service.runtime
    assert svc is not None
    queue = await first_queue(svc)
    ids = await insert_annotations(svc, queue, 2, status="confirmed")
    async with svc.db.transaction() as conn:
        moved = await lifecycle.move_where(
            conn, "exporting", t.annotations.c.id.in_(ids), actor_id=queue.user_id
        )
    assert sorted(moved) == sorted(ids)
    async with svc.db.reading() as conn:
        jobs = (
            await conn.execute(
                sa.select(t.jobs.c.annotation_id, t.jobs.c.payload).where(t.jobs.c.kind == "export")
            )
        ).all()
    assert sorted(j.annotation_id for j in jobs) == sorted(ids)
    assert all(j.payload == {"actor_id": queue.user_id} for j in jobs)


async def test_move_where_leaves_disallowed_statuses_alone(server: RunningServer) -> None:
    """A bulk move to exported takes only the annotations whose status allows it."""
    svc = server.service.runtime
    assert svc is not None
    queue = await first_queue(svc)
    confirmed = await insert_annotations(svc, queue, 2, status="confirmed")
    deleted = await insert_annotations(svc, queue, 1, status="deleted")
    async with svc.db.transaction() as conn:
        moved = await lifecycle.move_where(
            conn,
            "exported",
            t.annotations.c.id.in_(confirmed + deleted),
            actor_id=queue.user_id,
            only_from=["confirmed", "deleted"],
        )
    assert sorted(moved) == sorted(confirmed)
    assert (await annotation_row(svc, deleted[0])).status == "deleted"
    row = await annotation_row(svc, confirmed[0])
    assert row.exported_by_id == queue.user_id and row.exported_at is not None


def test_parse_statuses_rejects_unknown_names() -> None:
    """An unknown status in a `statuses` list is a 400 naming the field and the value."""
    from postroom.errors import BadRequest

    assert lifecycle.parse_statuses("to_review, postponed", "statuses") == [
        "to_review",
        "postponed",
    ]
    with pytest.raises(BadRequest) as raised:
        lifecycle.parse_statuses(["to_review", "bogus"], "statuses")
    assert "statuses" in raised.value.detail and "bogus" in raised.value.detail
