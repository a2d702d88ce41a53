"""HTTP upload intake over real sockets: multipart and raw bodies, both upload endpoints, the
records they create, the pipeline taking them to to_review, and the rossum-api SDK."""

from __future__ import annotations

import json

from tests.conftest import Api, RunningServer
from tests.upload_helpers import (
    QUEUE_ID,
    basic_api,
    docx_with_thumbnail_first,
    form,
    id_of,
    pdf_bytes,
    png_bytes,
    set_queue_settings,
    wait_for_annotation,
)


async def test_curl_style_multipart_two_files_metadata_values_over_basic_auth(
    admin: Api, server: RunningServer
) -> None:
    """Two files + metadata + values with Basic auth → 201 with two results that reach to_review."""
    pdf, png = pdf_bytes(), png_bytes()
    data = form(
        [("a.pdf", pdf), ("b.png", png)],
        {"metadata": json.dumps({"project": "x"}), "values": json.dumps({"upload:note": "y"})},
    )
    status, body = await basic_api(admin).post(f"/queues/{QUEUE_ID}/upload", data=data)
    assert status == 201, body
    assert len(body["results"]) == 2
    assert body["annotation"] == body["results"][0]["annotation"]
    assert body["document"] == body["results"][0]["document"]
    expected = [("a.pdf", "application/pdf", pdf), ("b.png", "image/png", png)]
    for result, (name, mime, content) in zip(body["results"], expected, strict=True):
        assert result["document"].startswith(server.api_url + "/documents/")
        _, document = await admin.get(result["document"])
        assert document["original_file_name"] == name
        assert document["mime_type"] == mime
        assert document["annotations"] == [result["annotation"]]
        async with admin.session.get(document["content"], headers=admin.headers) as response:
            assert await response.read() == content
        annotation = await wait_for_annotation(admin, result["annotation"])
        assert annotation["status"] == "to_review"
        assert annotation["metadata"] == {"project": "x"}
        _, content_tree = await admin.get(result["annotation"] + "/content")
        notes = [
            dp
            for section in content_tree["content"]
            for dp in section["children"]
            if dp.get("schema_id") == "note"
        ]
        assert notes[0]["content"]["value"] == "y"


async def test_raw_body_keeps_the_utf8_name_from_the_url(admin: Api) -> None:
    """`--data-binary @f.pdf …/upload/Fa%C4%8Dtura%20%C4%8D.1.pdf` stores the decoded UTF-8 name."""
    status, body = await basic_api(admin).post(
        f"/queues/{QUEUE_ID}/upload/Fa%C4%8Dtura%20%C4%8D.1.pdf",
        data=pdf_bytes(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},  # what curl sends
    )
    assert status == 201, body
    _, document = await admin.get(body["document"])
    assert document["original_file_name"] == "Fačtura č.1.pdf"
    assert document["mime_type"] == "application/pdf"


async def test_raw_body_named_by_rfc5987_content_disposition(admin: Api) -> None:
    """A raw body to /uploads is named by `filename*=utf-8''…`, preferred over `filename`."""
    status, body = await admin.post(
        f"/uploads?queue={QUEUE_ID}",
        data=pdf_bytes(),
        headers={
            "Content-Type": "application/pdf",
            "Content-Disposition": "attachment; filename=fallback.pdf; "
            "filename*=utf-8''document%20%F0%9F%8E%81.pdf",
        },
    )
    assert status == 202, body
    _, document = await admin.get(body["results"][0]["document"])
    assert document["original_file_name"] == "document 🎁.pdf"


async def test_raw_body_without_a_name_is_called_document(admin: Api) -> None:
    """A raw body with neither a path segment nor Content-Disposition is named `document`."""
    status, body = await admin.post(f"/uploads?queue={QUEUE_ID}", data=pdf_bytes())
    assert status == 202, body
    _, document = await admin.get(body["results"][0]["document"])
    assert document["original_file_name"] == "document"


async def test_uploads_endpoint_answers_202_with_task_and_results(
    admin: Api, server: RunningServer
) -> None:
    """POST /uploads?queue= → 202 {url: task, results}; the task leads to the upload's records."""
    data = form([("one.pdf", pdf_bytes())], {"values": json.dumps({"order_id": "PO-7"})})
    status, body = await admin.post(f"/uploads?queue={server.api_url}/queues/{QUEUE_ID}", data=data)
    assert status == 202, body
    assert body["url"].startswith(server.api_url + "/tasks/")
    (result,) = body["results"]
    await wait_for_annotation(admin, result["annotation"])
    status, task = await admin.get(body["url"] + "?no_redirect=true")
    assert status == 200
    assert task["type"] == "upload_created"
    assert task["status"] == "succeeded"
    upload_url = task["content"]["upload"]
    assert task["result_url"] == upload_url
    status, upload = await admin.get(upload_url)
    assert status == 200
    assert upload["documents"] == [result["document"]]
    assert upload["annotations"] == [result["annotation"]]
    assert upload["queue"] == f"{server.api_url}/queues/{QUEUE_ID}"
    assert upload["creator"].startswith(server.api_url + "/users/")
    assert upload["email"] is None
    _, content_tree = await admin.get(result["annotation"] + "/content")
    values = {
        dp["schema_id"]: dp["content"]["value"]
        for section in content_tree["content"]
        for dp in section["children"]
        if dp.get("category") == "datapoint"
    }
    assert values["order_id"] == "PO-7"  # bare key `order_id` means `upload:order_id`


async def test_filename_segment_on_uploads_endpoint(admin: Api) -> None:
    """POST /uploads/{filename}?queue= names a raw body from the path segment."""
    status, body = await admin.post(
        f"/uploads/r%C3%A9sum%C3%A9.pdf?queue={QUEUE_ID}", data=pdf_bytes()
    )
    assert status == 202, body
    _, document = await admin.get(body["results"][0]["document"])
    assert document["original_file_name"] == "résumé.pdf"


async def test_type_is_sniffed_not_trusted(admin: Api) -> None:
    """A PNG sent as `x.pdf` with Content-Type application/pdf is stored as image/png."""
    data = form([("x.pdf", png_bytes())])
    status, body = await admin.post(f"/queues/{QUEUE_ID}/upload", data=data)
    assert status == 201, body
    _, document = await admin.get(body["document"])
    assert document["mime_type"] == "image/png"


async def test_docx_with_large_first_entry_is_recognised(admin: Api) -> None:
    """A DOCX whose word/ entry starts late is still a DOCX (zip central directory checked)."""
    status, body = await admin.post(
        f"/queues/{QUEUE_ID}/upload", data=form([("letter.docx", docx_with_thumbnail_first())])
    )
    assert status == 201, body
    _, document = await admin.get(body["document"])
    assert document["mime_type"] == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )


async def test_unaccepted_type_keeps_document_and_fails_import(
    admin: Api, server: RunningServer
) -> None:
    """A type outside accepted_mime_types keeps its document; the annotation ends failed_import."""
    await set_queue_settings(server, QUEUE_ID, {"accepted_mime_types": ["application/pdf"]})
    status, body = await admin.post(
        f"/queues/{QUEUE_ID}/upload", data=form([("p.png", png_bytes())])
    )
    assert status == 201, body
    _, document = await admin.get(body["document"])
    assert document["mime_type"] == "image/png"
    annotation = await wait_for_annotation(admin, body["annotation"])
    assert annotation["status"] == "failed_import"
    assert any("image/png" in m.get("content", "") for m in annotation["messages"])
    status, accepted = await admin.post(
        f"/queues/{QUEUE_ID}/upload", data=form([("ok.pdf", pdf_bytes())])
    )
    assert status == 201
    assert (await wait_for_annotation(admin, accepted["annotation"]))["status"] == "to_review"


async def test_wildcard_accepted_types(admin: Api, server: RunningServer) -> None:
    """`image/*` in accepted_mime_types lets a PNG import and refuses a PDF."""
    await set_queue_settings(server, QUEUE_ID, {"accepted_mime_types": ["image/*"]})
    data = form([("p.png", png_bytes()), ("d.pdf", pdf_bytes())])
    status, body = await admin.post(f"/queues/{QUEUE_ID}/upload", data=data)
    assert status == 201, body
    png_result, pdf_result = body["results"]
    assert (await wait_for_annotation(admin, png_result["annotation"]))["status"] == "to_review"
    assert (await wait_for_annotation(admin, pdf_result["annotation"]))["status"] == "failed_import"


async def test_same_bytes_are_stored_once(admin: Api, server: RunningServer) -> None:
    """Two uploads of the same bytes make two documents sharing one blob (s3_name)."""
    content = pdf_bytes()
    first = (await admin.post(f"/queues/{QUEUE_ID}/upload", data=form([("a.pdf", content)])))[1]
    second = (await admin.post(f"/queues/{QUEUE_ID}/upload", data=form([("b.pdf", content)])))[1]
    _, doc_a = await admin.get(first["document"])
    _, doc_b = await admin.get(second["document"])
    assert doc_a["id"] != doc_b["id"]
    assert doc_a["s3_name"] == doc_b["s3_name"]
    blobs = [p for p in (server.data_dir / "blobs").rglob("*") if p.is_file()]
    assert [p.name for p in blobs].count(doc_a["s3_name"]) == 1


async def test_list_and_retrieve_uploads(admin: Api) -> None:
    """GET /uploads lists uploads with the Rossum envelope; GET /uploads/{id} shows one."""
    status, _ = await admin.post(f"/uploads?queue={QUEUE_ID}", data=form([("a.pdf", pdf_bytes())]))
    assert status == 202
    status, listing = await admin.get("/uploads")
    assert status == 200
    assert listing["pagination"]["total"] == 1
    (upload,) = listing["results"]
    status, one = await admin.get(f"/uploads/{upload['id']}")
    assert status == 200
    assert one == upload
    assert one["organization"].endswith("/organizations/1")
    assert one["additional_documents"] == []
    status, _ = await admin.get("/uploads/999999")
    assert status == 404


async def test_rossum_sdk_upload_import_and_retrieve(
    admin: Api, server: RunningServer, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """The rossum-api async SDK uploads, imports and reads back tasks, uploads and content unchanged."""
    import warnings

    from rossum_api import AsyncRossumAPIClient
    from rossum_api.dtos import UserCredentials

    from tests.conftest import ADMIN_PASSWORD, ADMIN_USER

    pdf = pdf_bytes()
    path = tmp_path / "sdk.pdf"
    path.write_bytes(pdf)
    client = AsyncRossumAPIClient(
        base_url=server.api_url, credentials=UserCredentials(ADMIN_USER, ADMIN_PASSWORD)
    )
    (task,) = await client.upload_document(
        QUEUE_ID, [(str(path), "Přehled.pdf")], values={"upload:note": "sdk"}, metadata={"k": 1}
    )
    assert task.type == "upload_created"
    assert task.status in ("running", "succeeded")
    upload = await client.retrieve_upload(id_of(task.content["upload"]))
    (document_url,) = upload.documents
    (annotation_url,) = upload.annotations
    await wait_for_annotation(admin, annotation_url)
    task = await client.retrieve_task(task.id)
    assert task.status == "succeeded"
    annotation = await client.retrieve_annotation(id_of(annotation_url))
    assert annotation.status == "to_review"
    assert annotation.metadata == {"k": 1}
    assert await client.retrieve_document_content(id_of(document_url)) == pdf
    document = await client.retrieve_document(id_of(document_url))
    assert document.original_file_name == "Přehled.pdf"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # import_document is deprecated
        (annotation_id,) = await client.import_document(QUEUE_ID, [(str(path), "old.pdf")])
    imported = await wait_for_annotation(admin, f"/annotations/{annotation_id}")
    assert imported["status"] == "to_review"


async def test_metadata_sent_as_a_file_part_is_still_metadata(admin: Api) -> None:
    """`curl -F metadata=@m.json` (a part with a file name) sets metadata instead of adding a file."""
    data = form([("a.pdf", pdf_bytes())])
    data.add_field(
        "metadata", b'{"from": "file"}', filename="m.json", content_type="application/json"
    )
    status, body = await admin.post(f"/queues/{QUEUE_ID}/upload", data=data)
    assert status == 201, body
    assert len(body["results"]) == 1
    _, annotation = await admin.get(body["annotation"])
    assert annotation["metadata"] == {"from": "file"}


async def test_encoded_slash_in_the_name_is_kept_and_never_a_path(
    admin: Api, server: RunningServer
) -> None:
    """A name like `../x/y.pdf` is stored verbatim; the bytes still land in the blob store only."""
    status, body = await admin.post(f"/queues/{QUEUE_ID}/upload/..%2Fx%2Fy.pdf", data=pdf_bytes())
    assert status == 201, body
    _, document = await admin.get(body["document"])
    assert document["original_file_name"] == "../x/y.pdf"
    assert not (server.data_dir.parent / "x").exists()
    status, body = await admin.post(f"/queues/{QUEUE_ID}/upload/100%2541.pdf", data=pdf_bytes())
    assert status == 201, body
    _, document = await admin.get(body["document"])
    assert document["original_file_name"] == "100%41.pdf"  # decoded once, not twice


async def test_uploaded_files_are_counted_in_metrics(admin: Api, server: RunningServer) -> None:
    """Each stored file adds one to postroom_uploaded_files_total{channel="http"}."""

    async def counted() -> float:
        async with admin.session.get(server.base + "/metrics") as response:
            text = await response.text()
        for line in text.splitlines():
            if line.startswith('postroom_uploaded_files_total{channel="http"}'):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = await counted()
    data = form([("a.pdf", pdf_bytes()), ("b.png", png_bytes())])
    status, _ = await admin.post(f"/queues/{QUEUE_ID}/upload", data=data)
    assert status == 201
    status, _ = await admin.post("/documents", data=form([("c.pdf", pdf_bytes())]))
    assert status == 201
    assert await counted() - before == 3
