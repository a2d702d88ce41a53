"""The import pipeline end to end: files accepted by intake reach to_review / failed_import /
automated states through the real workers, on a real database and real HTTP reads."""

from __future__ import annotations

import sqlalchemy as sa

from postroom.db import tables as t
from tests.conftest import Api, RunningServer
from tests.pipeline_support import (
    datapoint_values,
    job_rows,
    make_image,
    make_pdf,
    settled,
    submit,
    task_outcome,
    update_queue,
    upload_task,
)


def _svc(server: RunningServer):  # type: ignore[no-untyped-def]
    assert server.service.runtime is not None
    return server.service.runtime


async def test_pdf_reaches_to_review_with_its_page_count(server: RunningServer, admin: Api) -> None:
    """A three-page PDF ends to_review with page_count 3, no messages, and its job done."""
    [annotation_id] = await submit(admin, [("invoice.pdf", make_pdf(3))])
    body = await settled(admin, annotation_id)
    assert body["status"] == "to_review"
    assert body["page_count"] == 3
    assert body["messages"] == []
    assert body["automated"] is False
    [job] = await job_rows(_svc(server), annotation_id)
    assert (job.status, job.attempts, job.lease_until) == ("done", 1, None)


async def test_png_values_fill_the_note_datapoint(server: RunningServer, admin: Api) -> None:
    """A PNG uploaded with values {"upload:note": "y"} gets content datapoint note = "y"."""
    png = make_image("PNG", (320, 200))
    [annotation_id] = await submit(
        admin,
        [("scan.png", png)],
        values={"upload:note": "y", "upload:amount_total": "1 234,50"},
    )
    body = await settled(admin, annotation_id)
    assert body["status"] == "to_review"
    assert body["page_count"] == 1
    _s, content = await admin.get(f"/annotations/{annotation_id}/content", expect=200)
    values = datapoint_values(content["content"])
    assert values["note"]["value"] == "y"
    assert values["amount_total"]["normalized_value"] == "1234.5"
    assert values["document_id"]["value"] == ""
    section = content["content"][0]
    assert section["category"] == "section"
    assert section["url"] == f"{body['url']}/content/{section['id']}"


async def test_multi_page_tiff_counts_its_frames(server: RunningServer, admin: Api) -> None:
    """A two-frame TIFF ends to_review with page_count 2."""
    [annotation_id] = await submit(admin, [("fax.tiff", make_image("TIFF", frames=2))])
    body = await settled(admin, annotation_id)
    assert (body["status"], body["page_count"]) == ("to_review", 2)


async def test_type_not_accepted_by_queue_fails_import_with_message(
    server: RunningServer, admin: Api
) -> None:
    """A PNG sent to a queue accepting only PDFs keeps its document and ends failed_import saying why."""
    svc = _svc(server)
    await update_queue(svc, settings={"accepted_mime_types": ["application/pdf"]})
    [annotation_id] = await submit(admin, [("photo.png", make_image("PNG"))])
    body = await settled(admin, annotation_id)
    assert body["status"] == "failed_import"
    [message] = body["messages"]
    assert message["type"] == "error" and "image/png" in message["content"]
    async with svc.db.reading() as conn:
        exists = (
            await conn.execute(
                sa.select(t.documents.c.id).where(
                    t.documents.c.id == int(body["document"].rsplit("/", 1)[1])
                )
            )
        ).first()
    assert exists is not None


async def test_wildcard_accepts_images(server: RunningServer, admin: Api) -> None:
    """accepted_mime_types ["image/*"] lets a JPEG through to to_review."""
    svc = _svc(server)
    await update_queue(svc, settings={"accepted_mime_types": ["image/*"]})
    [annotation_id] = await submit(admin, [("photo.jpg", make_image("JPEG"))])
    assert (await settled(admin, annotation_id))["status"] == "to_review"


async def test_corrupt_pdf_fails_import(server: RunningServer, admin: Api) -> None:
    """A file that libmagic calls a PDF but pypdf cannot read ends failed_import with a message."""
    broken = b"%PDF-1.7\n" + b"\x00garbage" * 200
    [annotation_id] = await submit(admin, [("broken.pdf", broken)])
    body = await settled(admin, annotation_id)
    assert body["status"] == "failed_import"
    assert "PDF" in body["messages"][0]["content"]


async def test_password_protected_pdf_fails_but_owner_only_protection_imports(
    admin: Api,
) -> None:
    """A PDF that needs a password to open ends failed_import saying so; one with only an owner
    password (opens without one) is imported with its page count."""
    locked, open_ = await submit(
        admin, [("locked.pdf", make_pdf(password="secret")), ("open.pdf", make_pdf(2, password=""))]
    )
    body = await settled(admin, locked)
    assert body["status"] == "failed_import" and "password" in body["messages"][0]["content"]
    body = await settled(admin, open_)
    assert (body["status"], body["page_count"]) == ("to_review", 2)


async def test_automation_always_exports(server: RunningServer, admin: Api) -> None:
    """automation_level=always without confirmed state: exported, automated, stamped."""
    svc = _svc(server)
    await update_queue(svc, automation_level="always", use_confirmed_state=False)
    [annotation_id] = await submit(admin, [("a.pdf", make_pdf())])
    body = await settled(admin, annotation_id)
    assert body["status"] == "exported"
    assert body["automated"] is True
    assert body["exported_at"] and body["confirmed_at"]


async def test_automation_always_with_confirmed_state_confirms(
    server: RunningServer, admin: Api
) -> None:
    """automation_level=always with use_confirmed_state: confirmed, not exported."""
    svc = _svc(server)
    await update_queue(svc, automation_level="always", use_confirmed_state=True)
    [annotation_id] = await submit(admin, [("a.pdf", make_pdf())])
    body = await settled(admin, annotation_id)
    assert (body["status"], body["automated"]) == ("confirmed", True)
    assert body["confirmed_at"] and body["exported_at"] is None


async def test_task_succeeds_once_every_annotation_left_importing(admin: Api) -> None:
    """A two-file POST /uploads answers a task that turns succeeded once both are imported."""
    task = await task_outcome(
        admin, await upload_task(admin, [("a.pdf", make_pdf()), ("b.png", make_image("PNG"))])
    )
    assert task["status"] == "succeeded"


async def test_task_fails_when_nothing_could_be_imported(server: RunningServer, admin: Api) -> None:
    """When every file of an upload ends failed_import, its task is failed with the reason."""
    await update_queue(_svc(server), settings={"accepted_mime_types": ["application/pdf"]})
    task = await task_outcome(admin, await upload_task(admin, [("x.png", make_image("PNG"))]))
    assert task["status"] == "failed" and "image/png" in task["detail"]


async def test_many_files_all_settle(server: RunningServer, admin: Api) -> None:
    """Twelve files accepted at once (more than the workers) all reach to_review exactly once."""
    svc = _svc(server)
    ids = await submit(admin, [(f"f{i}.pdf", make_pdf(1 + i % 3)) for i in range(12)])
    for i, annotation_id in enumerate(ids):
        body = await settled(admin, annotation_id)
        assert (body["status"], body["page_count"]) == ("to_review", 1 + i % 3)
    async with svc.db.reading() as conn:
        statuses = (
            await conn.execute(
                sa.select(t.jobs.c.status, sa.func.count()).group_by(t.jobs.c.status)
            )
        ).all()
    assert dict(statuses) == {"done": 12}


async def test_queue_counts_follow_the_pipeline(server: RunningServer, admin: Api) -> None:
    """Queue counts show imported and refused annotations in their final statuses."""
    svc = _svc(server)
    await update_queue(svc, settings={"accepted_mime_types": ["application/pdf"]})
    ids = await submit(
        admin, [("a.pdf", make_pdf()), ("b.pdf", make_pdf()), ("c.png", make_image())]
    )
    for annotation_id in ids:
        await settled(admin, annotation_id)
    _s, queue = await admin.get("/queues/1", expect=200)
    assert queue["counts"]["to_review"] == 2
    assert queue["counts"]["failed_import"] == 1
    assert queue["counts"]["importing"] == 0
