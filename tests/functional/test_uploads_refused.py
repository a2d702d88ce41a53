"""Uploads that must be refused, over real HTTP: bad bodies (400), who may upload where
(401/403/404), queue status (409), reject_identical (409) — each leaving no record and no file."""

from __future__ import annotations

import json

import aiohttp
import pytest

from tests.conftest import Api, RunningServer
from tests.upload_helpers import (
    QUEUE_ID,
    add_queue,
    basic,
    basic_api,
    count_rows,
    form,
    pdf_bytes,
    set_queue_status,
    stored_files,
)

NOTHING = {"uploads": 0, "documents": 0, "annotations": 0, "tasks": 0, "jobs": 0}


async def assert_nothing_created(server: RunningServer) -> None:
    assert await count_rows(server) == NOTHING
    assert stored_files(server) == []


def fields_only(**fields: str) -> aiohttp.FormData:
    data = aiohttp.FormData(default_to_multipart=True)
    for key, value in fields.items():
        data.add_field(key, value)
    return data


BAD_BODIES = [
    pytest.param(
        lambda: fields_only(metadata="{}"),
        "No file given",
        id="multipart-without-file",
    ),
    pytest.param(lambda: form([("empty.pdf", b"")]), "'empty.pdf' is empty", id="empty-file"),
    pytest.param(
        lambda: form([("a.pdf", pdf_bytes())], {"metadata": "{not json"}),
        "metadata: not valid JSON",
        id="metadata-bad-json",
    ),
    pytest.param(
        lambda: form([("a.pdf", pdf_bytes())], {"metadata": "[1, 2]"}),
        "metadata: expected a JSON object",
        id="metadata-not-object",
    ),
    pytest.param(
        lambda: form([("a.pdf", pdf_bytes())], {"values": '"text"'}),
        "values: expected a JSON object",
        id="values-not-object",
    ),
    pytest.param(
        lambda: form([("a.pdf", pdf_bytes())], {"values": json.dumps({"upload:x": [1]})}),
        "values.upload:x",
        id="values-nested",
    ),
    pytest.param(
        lambda: form([("a.pdf", pdf_bytes())], {"metadata": json.dumps({"k": "v" * 5000})}),
        "metadata: larger than 4096 bytes",
        id="metadata-over-4kB",
    ),
    pytest.param(
        lambda: form([("a.pdf", pdf_bytes())], {"colour": "blue"}),
        "colour: unknown field",
        id="unknown-field",
    ),
]


@pytest.mark.parametrize(("make_body", "detail"), BAD_BODIES)
@pytest.mark.parametrize("path", [f"/queues/{QUEUE_ID}/upload", f"/uploads?queue={QUEUE_ID}"])
async def test_bad_body_is_400_naming_the_problem(
    admin: Api,
    server: RunningServer,
    make_body,
    detail: str,
    path: str,  # type: ignore[no-untyped-def]
) -> None:
    """Each malformed upload answers 400 bad_request with a detail naming it, creating nothing."""
    status, body = await admin.post(path, data=make_body())
    assert status == 400, body
    assert body["code"] == "bad_request"
    assert detail in body["detail"]
    await assert_nothing_created(server)


async def test_empty_raw_body_is_400(admin: Api, server: RunningServer) -> None:
    """A raw upload with no bytes is refused with 400."""
    status, body = await admin.post(f"/queues/{QUEUE_ID}/upload/a.pdf", data=b"")
    assert status == 400
    assert "empty" in body["detail"]
    await assert_nothing_created(server)


async def test_malformed_multipart_is_400(admin: Api, server: RunningServer) -> None:
    """A multipart body without a boundary or cut short answers 400, never 500."""
    status, body = await admin.post(
        f"/queues/{QUEUE_ID}/upload",
        data=b"garbage",
        headers={"Content-Type": "multipart/form-data"},
    )
    assert status == 400, body
    assert "multipart" in body["detail"]
    truncated = (
        b'--xyz\r\nContent-Disposition: form-data; name="content"; filename="a.pdf"\r\n\r\n%PDF'
    )
    status, body = await admin.post(
        f"/queues/{QUEUE_ID}/upload",
        data=truncated,
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert status == 400, body
    await assert_nothing_created(server)


async def test_part_header_with_control_characters_is_400(
    admin: Api, server: RunningServer
) -> None:
    """A part header carrying a control character answers 400 (found by schemathesis as a 500)."""
    bad = (
        b'--xyz\r\nContent-Disposition: form-data; name="content"; filename="a\x01.pdf"\r\n'
        b"X-Bad: a\x00b\r\n\r\n%PDF-1.4\r\n--xyz--\r\n"
    )
    status, body = await admin.post(
        f"/queues/{QUEUE_ID}/upload",
        data=bad,
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert status == 400, body
    assert body["code"] == "bad_request"
    await assert_nothing_created(server)


async def test_missing_queue_parameter_is_400(admin: Api, server: RunningServer) -> None:
    """POST /uploads without ?queue= answers 400 naming the parameter."""
    status, body = await admin.post("/uploads", data=form([("a.pdf", pdf_bytes())]))
    assert status == 400
    assert body["detail"].startswith("queue:")
    await assert_nothing_created(server)


@pytest.mark.parametrize("path", ["/queues/999/upload", "/uploads?queue=999"])
async def test_unknown_queue_is_404(admin: Api, server: RunningServer, path: str) -> None:
    """An upload to a queue that does not exist answers 404."""
    status, body = await admin.post(path, data=form([("a.pdf", pdf_bytes())]))
    assert status == 404
    assert body["code"] == "not_found"
    await assert_nothing_created(server)


async def test_annotator_cannot_see_an_unassigned_queue(admin: Api, server: RunningServer) -> None:
    """An annotator uploading to a queue not assigned to them gets 404; to their own queue 201."""
    other = await add_queue(server, "Other")
    annotator = await admin.create_user("anna", "annotator", [QUEUE_ID])
    status, _ = await annotator.post(f"/queues/{other}/upload", data=form([("a.pdf", pdf_bytes())]))
    assert status == 404
    status, _ = await annotator.post(f"/uploads?queue={other}", data=form([("a.pdf", pdf_bytes())]))
    assert status == 404
    await assert_nothing_created(server)
    status, _ = await annotator.post(
        f"/queues/{QUEUE_ID}/upload", data=form([("a.pdf", pdf_bytes())])
    )
    assert status == 201


async def test_viewer_may_not_upload(admin: Api, server: RunningServer) -> None:
    """A viewer assigned to the queue gets 403 access_forbidden."""
    viewer = await admin.create_user("vera", "viewer", [QUEUE_ID])
    status, body = await viewer.post(
        f"/uploads?queue={QUEUE_ID}", data=form([("a.pdf", pdf_bytes())])
    )
    assert status == 403
    assert body["code"] == "access_forbidden"
    await assert_nothing_created(server)


@pytest.mark.parametrize("queue_status", ["deletion_requested", "deletion_in_progress"])
async def test_inactive_queue_is_409(admin: Api, server: RunningServer, queue_status: str) -> None:
    """A queue that is being deleted refuses uploads with 409 conflict_status."""
    await set_queue_status(server, QUEUE_ID, queue_status)
    for path in (f"/queues/{QUEUE_ID}/upload", f"/uploads?queue={QUEUE_ID}"):
        status, body = await admin.post(path, data=form([("a.pdf", pdf_bytes())]))
        assert status == 409
        assert body["code"] == "conflict_status"
        assert queue_status in body["detail"]
    await assert_nothing_created(server)


async def test_reject_identical(admin: Api, server: RunningServer) -> None:
    """reject_identical=true: same bytes and name → 409; same bytes, other name → 202."""
    content = pdf_bytes()
    url = f"/uploads?queue={QUEUE_ID}&reject_identical=true"
    status, _ = await admin.post(url, data=form([("inv.pdf", content)]))
    assert status == 202
    status, body = await admin.post(url, data=form([("inv.pdf", content)]))
    assert status == 409
    assert body["code"] == "conflict_status"
    assert "inv.pdf" in body["detail"]
    status, _ = await admin.post(url, data=form([("other.pdf", content)]))
    assert status == 202
    status, _ = await admin.post(f"/uploads?queue={QUEUE_ID}", data=form([("inv.pdf", content)]))
    assert status == 202  # without the flag, duplicates are welcome
    assert (await count_rows(server))["documents"] == 3


async def test_reject_identical_allows_one_file_only(admin: Api, server: RunningServer) -> None:
    """reject_identical with two files answers 400, as the reference says."""
    data = form([("a.pdf", pdf_bytes()), ("b.pdf", pdf_bytes())])
    status, body = await admin.post(f"/uploads?queue={QUEUE_ID}&reject_identical=true", data=data)
    assert status == 400
    assert "reject_identical" in body["detail"]
    await assert_nothing_created(server)


async def test_bad_basic_credentials_are_401(anon: Api, server: RunningServer) -> None:
    """A wrong Basic password answers 401 and creates nothing."""
    status, body = await anon.post(
        f"/queues/{QUEUE_ID}/upload",
        data=form([("a.pdf", pdf_bytes())]),
        headers=basic("admin", "wrong"),
    )
    assert status == 401
    assert body["code"] == "authentication_failed"
    await assert_nothing_created(server)


async def test_basic_auth_only_on_intake_endpoints(admin: Api) -> None:
    """Basic works for POST /uploads and POST /documents, not for reading uploads back."""
    basic_client = basic_api(admin)
    status, _ = await basic_client.post(
        f"/uploads?queue={QUEUE_ID}", data=form([("a.pdf", pdf_bytes())])
    )
    assert status == 202
    status, _ = await basic_client.post("/documents", data=form([("d.pdf", pdf_bytes())]))
    assert status == 201
    status, _ = await basic_client.get("/uploads")
    assert status == 401


async def test_storage_failure_is_503_and_leaves_nothing(admin: Api, server: RunningServer) -> None:
    """When the blob store cannot be written, the upload answers 503 (retryable), not 500."""
    blobs = server.data_dir / "blobs"
    moved = server.data_dir / "blobs-away"
    blobs.rename(moved)
    blobs.write_bytes(b"not a directory")  # every blob path now fails with NotADirectoryError
    try:
        status, body = await admin.post(
            f"/queues/{QUEUE_ID}/upload", data=form([("a.pdf", pdf_bytes())])
        )
    finally:
        blobs.unlink()
        moved.rename(blobs)
    assert status == 503, body
    assert body["code"] == "service_unavailable"
    assert await count_rows(server) == NOTHING
    assert stored_files(server) == []


async def test_reject_identical_holds_under_concurrency(admin: Api, server: RunningServer) -> None:
    """Eight identical reject_identical uploads at once: exactly one gets in, the others 409."""
    import asyncio

    content = pdf_bytes()
    url = f"/uploads?queue={QUEUE_ID}&reject_identical=true"
    answers = await asyncio.gather(
        *(admin.post(url, data=form([("same.pdf", content)])) for _ in range(8))
    )
    assert sorted(status for status, _ in answers) == [202] + [409] * 7
    assert (await count_rows(server))["documents"] == 1
