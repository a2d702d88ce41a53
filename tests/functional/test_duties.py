"""Background duties on a running service: session timeouts, queue deletion, retention, the lease."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import aiohttp
import aiosmtplib
import pytest
import sqlalchemy as sa

from postroom.clock import utcnow
from postroom.db import tables as t
from postroom.pipeline.duties import LEASE_NAME, DutyLease
from tests.annotation_rows import annotation_row, first_queue, insert_annotations, store_blob
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, Api, RunningServer
from tests.pipeline_support import make_pdf, settled, submit
from tests.smtp_support import add_queue_with_inbox, message, rows, send, set_queue, wait_for

FAST = {"POSTROOM_PIPELINE_SWEEP_INTERVAL": "0.2"}


async def _login(server: RunningServer, http: aiohttp.ClientSession) -> Api:
    return await Api(http, server.base, {}).login(ADMIN_USER, ADMIN_PASSWORD)


def _svc(server: RunningServer) -> Any:
    assert server.service.runtime is not None
    return server.service.runtime


async def test_session_timeout_sends_reviewing_back(
    server_factory: Any, http: aiohttp.ClientSession
) -> None:
    """A session older than its queue's session_timeout returns to to_review; others stay."""
    server = await server_factory(**FAST)
    api = await _login(server, http)
    queue = await first_queue(_svc(server))
    short_queue, _ = await add_queue_with_inbox(server, "Short sessions")
    await set_queue(server, short_queue, session_timeout="00:00:01")
    (kept,) = await insert_annotations(_svc(server), queue, 1)
    (expiring,) = await insert_annotations(
        _svc(server), dataclasses.replace(queue, queue_id=short_queue), 1
    )
    await api.post(f"/annotations/{kept}/start", expect=200)
    await api.post(f"/annotations/{expiring}/start", expect=200)

    async def returned() -> bool:
        return (await annotation_row(_svc(server), expiring)).status == "to_review"

    await wait_for(returned)
    row = await annotation_row(_svc(server), kept)
    assert row.status == "reviewing" and row.modifier_id == queue.user_id


async def test_deletion_refuses_uploads_and_mail_meanwhile(
    server: RunningServer, admin: Api
) -> None:
    """Once deletion is requested, uploads answer 409 and mail to the inbox is refused (550 5.2.1)."""
    queue_id, address = await add_queue_with_inbox(server, "Closing")
    status, _ = await admin.delete(f"/queues/{queue_id}", params={"delete_after": "01:00:00"})
    assert status == 202
    form = aiohttp.FormData()
    form.add_field("content", make_pdf(), filename="late.pdf")
    status, body = await admin.post(f"/queues/{queue_id}/upload", data=form)
    assert status == 409 and body["code"] == "conflict_status"
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        await send(server, message(address, attachments=[("a.pdf", make_pdf(), "application/pdf")]))
    code, reply = refused.value.recipients[0].code, refused.value.recipients[0].message
    assert code == 550 and "5.2.1" in reply
    assert await rows(server, t.annotations, t.annotations.c.queue_id == queue_id) == []


async def test_deleted_queue_disappears_with_records_and_blobs(
    server_factory: Any, http: aiohttp.ClientSession
) -> None:
    """delete_after=00:00:01: on a later sweep (two processes sharing the database) the queue,
    its annotations, documents, uploads, emails, inbox and unshared blobs are gone; a blob another
    queue's document shares stays."""
    first = await server_factory(**FAST)
    await server_factory(**FAST)  # a second process: the duty lease lets one of them sweep
    api = await _login(first, http)
    queue_id, address = await add_queue_with_inbox(first, "Doomed")
    shared = make_pdf(pages=2)
    doomed_ids = await submit(
        api, [("own.pdf", make_pdf(3)), ("shared.pdf", shared)], queue_id=queue_id
    )
    (kept_id,) = await submit(api, [("shared.pdf", shared)], queue_id=1)
    await send(first, message(address, attachments=[("mail.pdf", make_pdf(4), "application/pdf")]))
    for annotation_id in [*doomed_ids, kept_id]:
        await settled(api, annotation_id)
    docs = await rows(
        first,
        t.documents,
        t.documents.c.upload_id.in_(
            sa.select(t.uploads.c.id).where(t.uploads.c.queue_id == queue_id)
        ),
    )
    mails = await rows(first, t.emails, t.emails.c.queue_id == queue_id)
    assert len(docs) == 3 and len(mails) == 1
    keys = {d.s3_name for d in docs} | {mails[0].raw_blob}
    kept_doc_id = (await annotation_row(_svc(first), kept_id)).document_id
    kept_doc = (await rows(first, t.documents, t.documents.c.id == kept_doc_id))[0]
    assert kept_doc.s3_name in keys

    status, _ = await api.delete(f"/queues/{queue_id}", params={"delete_after": "00:00:01"})
    assert status == 202

    async def gone() -> bool:
        status, _ = await api.get(f"/queues/{queue_id}")
        return status == 404

    await wait_for(gone)
    assert await rows(first, t.annotations, t.annotations.c.queue_id == queue_id) == []
    assert await rows(first, t.uploads, t.uploads.c.queue_id == queue_id) == []
    assert await rows(first, t.emails, t.emails.c.queue_id == queue_id) == []
    assert await rows(first, t.documents, t.documents.c.id.in_([d.id for d in docs])) == []
    assert await rows(first, t.inboxes, t.inboxes.c.email == address) == []
    for key in keys - {kept_doc.s3_name}:
        assert not await _svc(first).blobs.exists(key), key
    assert await _svc(first).blobs.exists(kept_doc.s3_name)
    assert (await annotation_row(_svc(first), kept_id)).status == "to_review"


async def test_document_lifetime_purges_old_annotations(server_factory: Any) -> None:
    """Annotations older than the queue's document_lifetime are purged with their bytes."""
    server = await server_factory(**FAST)
    svc = _svc(server)
    queue = await first_queue(svc)
    key = await store_blob(svc, b"%PDF-1.4 old invoice")
    (old,) = await insert_annotations(svc, queue, 1, status="exported", blob_key=key)
    async with svc.db.transaction() as conn:
        await conn.execute(
            t.annotations.update()
            .where(t.annotations.c.id == old)
            .values(created_at=utcnow() - timedelta(days=3))
        )
    (young,) = await insert_annotations(svc, queue, 1, status="exported")
    await set_queue(server, queue.queue_id, document_lifetime="2 00:00:00")

    async def purged() -> bool:
        # The bytes go right after the records' commit: wait for both.
        status = (await annotation_row(svc, old)).status
        return status == "purged" and not await svc.blobs.exists(key)

    await wait_for(purged)
    row = await annotation_row(svc, old)
    assert row.content == [] and row.purged_at is not None
    assert (await annotation_row(svc, young)).status == "exported"


async def test_duty_lease_has_one_holder_until_released_or_expired(server: RunningServer) -> None:
    """A second holder cannot take the lease while it is held; it can once released or expired."""
    svc = _svc(server)

    # The service's own sweeper takes the lease at start (then sleeps a minute): clear it.
    async def taken() -> bool:
        async with svc.db.reading() as conn:
            return (await conn.execute(sa.select(t.duty_leases.c.holder))).first() is not None

    await wait_for(taken)
    async with svc.db.transaction() as conn:
        await conn.execute(t.duty_leases.delete())
    one, two = DutyLease(svc, "proc-one", 60), DutyLease(svc, "proc-two", 60)
    assert await one.acquire()
    assert await one.acquire()  # renewing is fine
    assert not await two.acquire()
    await one.release()
    assert await two.acquire()
    async with svc.db.transaction() as conn:
        await conn.execute(
            t.duty_leases.update()
            .where(t.duty_leases.c.name == LEASE_NAME)
            .values(lease_until=utcnow() - timedelta(seconds=1))
        )
    assert await one.acquire()
    assert not await two.acquire()


async def test_failed_deletion_marks_the_queue_deletion_failed(
    server_factory: Any, http: aiohttp.ClientSession
) -> None:
    """When removing a queue's data fails (a blob that cannot be deleted), the queue ends
    `deletion_failed` instead of vanishing half-deleted without a trace."""
    server = await server_factory(**FAST)
    api = await _login(server, http)
    svc = _svc(server)
    queue_id, _ = await add_queue_with_inbox(server, "Stuck")
    key = "ab" * 32
    svc.blobs.path_of(key).mkdir(parents=True)  # a directory where the blob file should be
    queue = await first_queue(svc)
    await insert_annotations(svc, dataclasses.replace(queue, queue_id=queue_id), 1, blob_key=key)
    await api.delete(f"/queues/{queue_id}", params={"delete_after": "00:00:01"}, expect=202)

    async def failed() -> bool:
        _, body = await api.get(f"/queues/{queue_id}")
        return bool(body and body.get("status") == "deletion_failed")

    await wait_for(failed)


async def test_orphan_blob_sweep_removes_only_old_unreferenced_blobs(
    server: RunningServer, admin: Api
) -> None:
    """An unreferenced blob idle for over an hour is removed; a referenced one and a fresh
    orphan (an upload between storing and committing) stay."""
    import os
    import time

    from postroom.domain.purge import sweep_orphan_blobs

    svc = _svc(server)
    (annotation_id,) = await submit(admin, [("kept.pdf", make_pdf(1))], queue_id=1)
    await settled(admin, annotation_id)
    kept_doc_id = (await annotation_row(svc, annotation_id)).document_id
    kept = (await rows(server, t.documents, t.documents.c.id == kept_doc_id))[0].s3_name
    old_orphan = await store_blob(svc, b"left behind by a crash")
    fresh_orphan = await store_blob(svc, b"an upload still committing")
    two_hours_ago = time.time() - 7200
    for key in (kept, old_orphan):
        os.utime(svc.blobs.path_of(key), (two_hours_ago, two_hours_ago))

    assert await sweep_orphan_blobs(svc) == 1
    assert not await svc.blobs.exists(old_orphan)
    assert await svc.blobs.exists(kept)
    assert await svc.blobs.exists(fresh_orphan)


async def test_reusing_a_blob_refreshes_it_for_the_orphan_sweep(server: RunningServer) -> None:
    """Storing bytes that already exist as an idle blob marks that blob fresh again."""
    import os
    import time

    svc = _svc(server)
    key = await store_blob(svc, b"same bytes twice")
    two_hours_ago = time.time() - 7200
    os.utime(svc.blobs.path_of(key), (two_hours_ago, two_hours_ago))
    assert await store_blob(svc, b"same bytes twice") == key
    assert key not in svc.blobs.idle_keys(3600)
