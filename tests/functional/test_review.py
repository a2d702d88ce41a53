"""Review over real HTTP: start, cancel, confirm, postpone, delete, reject, purge_deleted, `next`."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from postroom.db import tables as t
from tests.annotation_rows import (
    QueueRef,
    annotation_row,
    first_queue,
    insert_annotations,
    store_blob,
)
from tests.conftest import Api, RunningServer
from tests.pipeline_support import make_pdf, settled, submit


async def _queue(server: RunningServer) -> QueueRef:
    assert server.service.runtime is not None
    return await first_queue(server.service.runtime)


def _svc(server: RunningServer):  # type: ignore[no-untyped-def]
    assert server.service.runtime is not None
    return server.service.runtime


async def _set_queue(server: RunningServer, queue_id: int, **values: object) -> None:
    async with _svc(server).db.transaction() as conn:
        await conn.execute(t.queues.update().where(t.queues.c.id == queue_id).values(**values))


async def test_start_returns_url_and_session_timeout_and_holds_it(
    server: RunningServer, admin: Api
) -> None:
    """start → 200 {annotation URL, session_timeout}; the annotation is reviewing by the caller."""
    queue = await _queue(server)
    (aid,) = await insert_annotations(_svc(server), queue, 1, status="postponed")
    status, body = await admin.post(f"/annotations/{aid}/start")
    assert status == 200, body
    assert body == {
        "annotation": f"{server.api_url}/annotations/{aid}",
        "session_timeout": "01:00:00",
    }
    row = await annotation_row(_svc(server), aid)
    assert row.status == "reviewing" and row.previous_status == "postponed"
    assert row.modifier_id == queue.user_id and row.assigned_at is not None


async def test_start_outside_given_statuses_is_409_naming_status(
    server: RunningServer, admin: Api
) -> None:
    """start with statuses=[to_review] on a postponed annotation → 409 conflict_status naming it."""
    (aid,) = await insert_annotations(_svc(server), await _queue(server), 1, status="postponed")
    status, body = await admin.post(f"/annotations/{aid}/start", json={"statuses": ["to_review"]})
    assert status == 409
    assert body["code"] == "conflict_status" and "postponed" in body["detail"]
    status, body = await admin.post(f"/annotations/{aid}/start", json={"statuses": ["nonsense"]})
    assert status == 400 and "statuses" in body["detail"]


async def test_exported_cannot_be_started(server: RunningServer, admin: Api) -> None:
    """Starting an exported annotation answers 409 naming `exported`."""
    (aid,) = await insert_annotations(_svc(server), await _queue(server), 1, status="exported")
    status, body = await admin.post(f"/annotations/{aid}/start")
    assert status == 409 and "exported" in body["detail"]


async def test_only_the_holder_may_start_again_or_confirm(
    server: RunningServer, admin: Api
) -> None:
    """While one user reviews, another user's start and confirm answer 409 naming the holder."""
    queue = await _queue(server)
    (aid,) = await insert_annotations(_svc(server), queue, 1)
    other = await admin.create_user("rev2", "annotator", [queue.queue_id])
    await other.post(f"/annotations/{aid}/start", expect=200)
    status, body = await admin.post(f"/annotations/{aid}/start")
    assert status == 409 and "rev2" in body["detail"]
    status, body = await admin.post(f"/annotations/{aid}/confirm")
    assert status == 409 and body["code"] == "conflict_status"
    assert (await annotation_row(_svc(server), aid)).status == "reviewing"


async def test_cancel_goes_back_to_where_it_was_started(server: RunningServer, admin: Api) -> None:
    """cancel → 204 and the annotation returns to the status it was started from."""
    queue = await _queue(server)
    postponed, fresh = await insert_annotations(_svc(server), queue, 2, status="postponed")
    await _svc_move(server, fresh, "to_review")
    for aid, origin in ((postponed, "postponed"), (fresh, "to_review")):
        await admin.post(f"/annotations/{aid}/start", expect=200)
        status, _ = await admin.post(f"/annotations/{aid}/cancel")
        assert status == 204
        assert (await annotation_row(_svc(server), aid)).status == origin
    status, body = await admin.post(f"/annotations/{fresh}/cancel")
    assert status == 409 and "to_review" in body["detail"]


async def _svc_move(server: RunningServer, aid: int, status: str) -> None:
    async with _svc(server).db.transaction() as conn:
        await conn.execute(
            t.annotations.update().where(t.annotations.c.id == aid).values(status=status)
        )


async def test_confirm_with_confirmed_state(server: RunningServer, admin: Api) -> None:
    """On a queue with use_confirmed_state, confirm → 204 and status confirmed, stamped."""
    queue = await _queue(server)
    await _set_queue(server, queue.queue_id, use_confirmed_state=True)
    (aid,) = await insert_annotations(_svc(server), queue, 1)
    status, _ = await admin.post(f"/annotations/{aid}/confirm")
    assert status == 409  # not started yet
    await admin.post(f"/annotations/{aid}/start", expect=200)
    status, _ = await admin.post(f"/annotations/{aid}/confirm")
    assert status == 204
    row = await annotation_row(_svc(server), aid)
    assert row.status == "confirmed"
    assert row.confirmed_by_id == queue.user_id and row.confirmed_at is not None


async def test_confirm_without_confirmed_state_exports(server: RunningServer, admin: Api) -> None:
    """Without use_confirmed_state, confirm moves to exporting and the export job ends it exported."""
    queue = await _queue(server)
    (aid,) = await insert_annotations(_svc(server), queue, 1)
    await admin.post(f"/annotations/{aid}/start", expect=200)
    await admin.post(f"/annotations/{aid}/confirm", expect=204)
    row = await annotation_row(_svc(server), aid)
    assert row.status in ("exporting", "exported")
    assert row.confirmed_by_id == queue.user_id
    for _ in range(200):
        row = await annotation_row(_svc(server), aid)
        if row.status == "exported":
            break
        await asyncio.sleep(0.05)
    assert row.status == "exported"
    assert row.exported_by_id == queue.user_id and row.exported_at is not None


async def test_postpone_delete_reject_stamp_their_fields(server: RunningServer, admin: Api) -> None:
    """postpone, delete (204) and reject (note_content kept) move and stamp the annotation."""
    queue = await _queue(server)
    p, d, r = await insert_annotations(_svc(server), queue, 3)
    assert (await admin.post(f"/annotations/{p}/postpone"))[0] == 204
    assert (await admin.post(f"/annotations/{d}/delete"))[0] == 204
    status, body = await admin.post(f"/annotations/{r}/reject", json={"note_content": "bad date"})
    assert status == 200 and body["status"] == "rejected"
    assert (await annotation_row(_svc(server), p)).status == "postponed"
    deleted = await annotation_row(_svc(server), d)
    assert deleted.status == "deleted" and deleted.deleted_by_id == queue.user_id
    rejected = await annotation_row(_svc(server), r)
    assert rejected.status == "rejected" and rejected.note == "bad date"
    assert rejected.rejected_by_id == queue.user_id and rejected.rejected_at is not None
    status, body = await admin.post(f"/annotations/{r}/reject", json={"note_content": 5})
    assert status == 400 and "note_content" in body["detail"]


async def test_viewer_may_not_change_and_invisible_is_404(
    server: RunningServer, admin: Api
) -> None:
    """A viewer gets 403 on start; an annotator not assigned to the queue gets 404."""
    queue = await _queue(server)
    (aid,) = await insert_annotations(_svc(server), queue, 1)
    viewer = await admin.create_user("viewer1", "viewer", [queue.queue_id])
    stranger = await admin.create_user("stranger", "annotator", [])
    assert (await viewer.post(f"/annotations/{aid}/start"))[0] == 403
    status, body = await stranger.post(f"/annotations/{aid}/start")
    assert status == 404 and body["code"] == "not_found"


async def test_purge_deleted_wipes_content_and_unshared_bytes(
    server: RunningServer, admin: Api
) -> None:
    """purge_deleted → 202: deleted annotations become purged with content and file name wiped;
    a blob is removed only when no other document still uses it."""
    svc = _svc(server)
    queue = await _queue(server)
    only_key = await store_blob(svc, b"%PDF-1.4 only mine")
    shared_key = await store_blob(svc, b"%PDF-1.4 shared bytes")
    (lone,) = await insert_annotations(svc, queue, 1, status="deleted", blob_key=only_key)
    (dup_deleted,) = await insert_annotations(svc, queue, 1, status="deleted", blob_key=shared_key)
    (dup_alive,) = await insert_annotations(svc, queue, 1, status="to_review", blob_key=shared_key)
    status, _ = await admin.post(
        "/annotations/purge_deleted", json={"queue": f"{server.api_url}/queues/{queue.queue_id}"}
    )
    assert status == 202
    for aid in (lone, dup_deleted):
        row = await annotation_row(svc, aid)
        assert row.status == "purged" and row.content == [] and row.purged_at is not None
        async with svc.db.reading() as conn:
            doc = (
                await conn.execute(
                    sa.select(t.documents).where(t.documents.c.id == row.document_id)
                )
            ).one()
        assert doc.s3_name is None and doc.original_file_name == ""
    assert (await annotation_row(svc, dup_alive)).status == "to_review"
    assert not await svc.blobs.exists(only_key)
    assert await svc.blobs.exists(shared_key)
    status, _ = await admin.post("/annotations/purge_deleted", json={})
    assert status == 400


async def test_next_picks_oldest_and_null_when_none(server: RunningServer, admin: Api) -> None:
    """next starts the oldest to_review annotation for the caller; then null when none is left."""
    queue = await _queue(server)
    first, second = await insert_annotations(_svc(server), queue, 2)
    url = f"/queues/{queue.queue_id}/next"
    status, body = await admin.post(url)
    assert status == 200
    assert body["annotation"] == f"{server.api_url}/annotations/{first}"
    assert body["session_timeout"] == "01:00:00"
    assert (await annotation_row(_svc(server), first)).status == "reviewing"
    status, body = await admin.post(url, json={"annotation_ids": [second]})
    assert body["annotation"].endswith(f"/annotations/{second}")
    status, body = await admin.post(url)
    assert status == 200 and body["annotation"] is None
    status, body = await admin.post("/queues/999/next")
    assert status == 404


async def test_concurrent_next_callers_never_share_an_annotation(
    server: RunningServer, admin: Api
) -> None:
    """Two reviewers calling next at once, many times, never start the same annotation."""
    queue = await _queue(server)
    ids = await insert_annotations(_svc(server), queue, 24)
    one = await admin.create_user("rev_a", "annotator", [queue.queue_id])
    two = await admin.create_user("rev_b", "annotator", [queue.queue_id])
    url = f"/queues/{queue.queue_id}/next"
    calls = [client.post(url) for _ in range(15) for client in (one, two)]
    answers = await asyncio.gather(*calls)
    started = [body["annotation"] for status, body in answers if body["annotation"]]
    assert all(status == 200 for status, _ in answers)
    assert len(started) == len(ids) == len(set(started))
    async with _svc(server).db.reading() as conn:
        holders = (
            await conn.execute(
                sa.select(t.annotations.c.modifier_id, sa.func.count())
                .where(t.annotations.c.id.in_(ids), t.annotations.c.status == "reviewing")
                .group_by(t.annotations.c.modifier_id)
            )
        ).all()
    assert sum(count for _, count in holders) == len(ids)


async def _counts(api: Api, queue_id: int) -> dict[str, int]:
    _, body = await api.get(f"/queues/{queue_id}", expect=200)
    return body["counts"]  # type: ignore[no-any-return]


async def test_reviewer_flow_end_to_end_over_http(server: RunningServer, admin: Api) -> None:
    """upload → next → confirm → POST export to_status=exported, with the queue counts right at
    every step and the uploaded value in the export."""
    await admin.patch("/queues/1", json={"use_confirmed_state": True}, expect=200)
    ids = await submit(
        admin, [("a.pdf", make_pdf()), ("b.pdf", make_pdf(2))], values={"upload:note": "urgent"}
    )
    for annotation_id in ids:
        assert (await settled(admin, annotation_id))["status"] == "to_review"
    counts = await _counts(admin, 1)
    assert counts["to_review"] == 2 and counts["importing"] == 0

    _, body = await admin.post("/queues/1/next", expect=200)
    assert body["annotation"] == f"{server.api_url}/annotations/{ids[0]}"
    counts = await _counts(admin, 1)
    assert counts["reviewing"] == 1 and counts["to_review"] == 1

    await admin.post(f"/annotations/{ids[0]}/confirm", expect=204)
    counts = await _counts(admin, 1)
    assert counts["confirmed"] == 1 and counts["reviewing"] == 0 and counts["to_review"] == 1

    _, export = await admin.post(
        "/queues/1/export",
        params={"to_status": "exported", "status": "confirmed", "format": "json"},
        expect=200,
    )
    assert [item["url"] for item in export["results"]] == [f"{server.api_url}/annotations/{ids[0]}"]
    item = export["results"][0]
    assert item["status"] == "exported" and item["exported_at"]
    note = next(
        dp for section in item["content"] for dp in section["children"] if dp["schema_id"] == "note"
    )
    assert note["value"] == "urgent"
    counts = await _counts(admin, 1)
    assert counts["exported"] == 1 and counts["confirmed"] == 0 and counts["to_review"] == 1
    _, annotation = await admin.get(f"/annotations/{ids[0]}", expect=200)
    assert annotation["status"] == "exported"
    assert annotation["exported_by"] == f"{server.api_url}/users/1"


async def test_patch_status_follows_the_lifecycle(server: RunningServer, admin: Api) -> None:
    """PATCH status restores a deleted annotation, ignores an unchanged status, refuses statuses
    that need an action (400) and transitions the table forbids (409 naming the status)."""
    queue = await _queue(server)
    deleted, exported = await insert_annotations(_svc(server), queue, 2, status="deleted")
    await _svc_move(server, exported, "exported")
    status, body = await admin.patch(f"/annotations/{deleted}", json={"status": "to_review"})
    assert status == 200 and body["status"] == "to_review"
    status, body = await admin.patch(
        f"/annotations/{deleted}", json={"status": "to_review", "metadata": {"k": 1}}
    )
    assert status == 200 and body["metadata"] == {"k": 1}
    for target in ("purged", "reviewing"):
        status, body = await admin.patch(f"/annotations/{deleted}", json={"status": target})
        assert status == 400 and "status" in body["detail"], target
    status, body = await admin.patch(f"/annotations/{exported}", json={"status": "to_review"})
    assert status == 409 and "exported" in body["detail"]
