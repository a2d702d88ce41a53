"""Tasks over real HTTP: derived status while the pipeline works, 303 to the upload once it is
done (unless no_redirect), failure with a detail, and visibility."""

from __future__ import annotations

import pytest

from tests.conftest import Api, RunningServer
from tests.upload_helpers import QUEUE_ID, add_queue, form, pdf_bytes, wait_for_annotation


async def upload(api: Api, queue: int = QUEUE_ID) -> dict:  # type: ignore[type-arg]
    status, body = await api.post(f"/uploads?queue={queue}", data=form([("a.pdf", pdf_bytes())]))
    assert status == 202, body
    return body  # type: ignore[no-any-return]


async def test_succeeded_task_redirects_to_the_upload(admin: Api, server: RunningServer) -> None:
    """Once every annotation left importing, GET /tasks/{id} answers 303 to the upload."""
    body = await upload(admin)
    await wait_for_annotation(admin, body["results"][0]["annotation"])
    status, _ = await admin.get(body["url"])
    assert status == 303
    async with admin.session.get(body["url"], headers=admin.headers, allow_redirects=False) as r:
        location = r.headers["Location"]
    assert location.startswith(server.api_url + "/uploads/")
    status, upload_json = await admin.get(location)
    assert status == 200
    assert upload_json["annotations"] == [body["results"][0]["annotation"]]


@pytest.mark.parametrize("flag", ["true", "True", "1"])
async def test_no_redirect_returns_the_task(admin: Api, server: RunningServer, flag: str) -> None:
    """no_redirect=true|True|1 answers 200 with the task object instead of the redirect."""
    body = await upload(admin)
    await wait_for_annotation(admin, body["results"][0]["annotation"])
    status, task = await admin.get(f"{body['url']}?no_redirect={flag}")
    assert status == 200
    assert task["id"] == int(body["url"].rsplit("/", 1)[1])
    assert task["url"] == body["url"]
    assert task["type"] == "upload_created"
    assert task["status"] == "succeeded"
    assert task["expires_at"].endswith("Z")
    assert task["detail"] is None
    assert task["content"]["upload"] == task["result_url"]


async def test_task_runs_while_an_annotation_imports(admin: Api, server: RunningServer) -> None:
    """A task whose upload still has an importing annotation is running, with no result_url."""
    body = await upload(admin)
    assert server.service.runtime is not None
    from postroom.db import tables as t

    # Hold the annotation in importing, as while a worker is still busy with it.
    async with server.service.runtime.db.transaction() as conn:
        await conn.execute(t.jobs.delete())
        await conn.execute(t.annotations.update().values(status="importing"))
    status, task = await admin.get(body["url"])
    assert status == 200
    assert task["status"] == "running"
    assert task["result_url"] is None


async def test_failed_task_reports_its_detail(admin: Api, server: RunningServer) -> None:
    """A task recorded as failed answers 200 with status failed and its detail."""
    body = await upload(admin)
    assert server.service.runtime is not None
    from postroom.db import tables as t

    async with server.service.runtime.db.transaction() as conn:
        await conn.execute(t.tasks.update().values(status="failed", detail="Import failed: x."))
    status, task = await admin.get(body["url"])
    assert status == 200
    assert task["status"] == "failed"
    assert task["detail"] == "Import failed: x."


async def test_tasks_of_invisible_queues_are_404(admin: Api, server: RunningServer) -> None:
    """An annotator cannot read the task of an upload to a queue not assigned to them."""
    other = await add_queue(server, "Other")
    hidden = await upload(admin, queue=other)
    annotator = await admin.create_user("anna", "annotator", [QUEUE_ID])
    status, _ = await annotator.get(hidden["url"] + "?no_redirect=1")
    assert status == 404
    status, _ = await admin.get("/tasks/999999")
    assert status == 404
