"""Documents over real HTTP: list and retrieve, the original bytes with type and UTF-8 name,
POST /documents (no annotation), PATCH metadata, DELETE, and queue visibility."""

from __future__ import annotations

import json
import urllib.parse

from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, Api, RunningServer
from tests.upload_helpers import (
    QUEUE_ID,
    add_queue,
    basic_api,
    count_rows,
    form,
    pdf_bytes,
    png_bytes,
    stored_files,
)


async def upload_one(api: Api, name: str, content: bytes, queue: int = QUEUE_ID) -> dict:  # type: ignore[type-arg]
    status, body = await api.post(f"/queues/{queue}/upload", data=form([(name, content)]))
    assert status == 201, body
    status, document = await api.get(body["document"])
    assert status == 200
    return document  # type: ignore[no-any-return]


async def test_document_fields_follow_the_reference(admin: Api, server: RunningServer) -> None:
    """A document carries every field of the reference, non-null where the SDK needs it."""
    document = await upload_one(admin, "a.pdf", pdf_bytes())
    for key in ("id", "url", "s3_name", "mime_type", "created_at", "arrived_at", "content"):
        assert document[key] is not None, key
    assert document["url"] == f"{server.api_url}/documents/{document['id']}"
    assert document["content"] == document["url"] + "/content"
    assert len(document["s3_name"]) == 64
    assert document["parent"] is None and document["email"] is None
    assert document["attachment_status"] is None
    assert document["metadata"] == {}
    assert document["creator"] == f"{server.api_url}/users/1"
    assert document["created_at"].endswith("Z")


async def test_content_is_exact_bytes_with_sniffed_type_and_utf8_name(admin: Api) -> None:
    """GET /documents/{id}/content returns the bytes, the sniffed type and an RFC 5987 name."""
    content = png_bytes(800, 600)
    document = await upload_one(admin, "Účtenka 1.pdf", content)
    async with admin.session.get(document["content"], headers=admin.headers) as response:
        assert response.status == 200
        assert await response.read() == content
        assert response.headers["Content-Type"] == "image/png"
        disposition = response.headers["Content-Disposition"]
    assert "filename*=UTF-8''" + urllib.parse.quote("Účtenka 1.pdf", safe="") in disposition
    assert 'filename="__tenka 1.pdf"' in disposition  # ASCII fallback first (RFC 6266)


async def test_list_filters_and_ordering(admin: Api) -> None:
    """GET /documents filters by id and original_file_name and orders by the reference's fields."""
    a = await upload_one(admin, "b-second.pdf", pdf_bytes())
    b = await upload_one(admin, "a-first.pdf", pdf_bytes())
    status, listing = await admin.get("/documents?ordering=original_file_name")
    assert status == 200
    assert [d["id"] for d in listing["results"]] == [b["id"], a["id"]]
    assert listing["pagination"]["total"] == 2
    _, one = await admin.get("/documents?original_file_name=b-second.pdf")
    assert [d["id"] for d in one["results"]] == [a["id"]]
    _, by_id = await admin.get(f"/documents?id={b['id']}")
    assert [d["id"] for d in by_id["results"]] == [b["id"]]
    status, body = await admin.get("/documents?ordering=size")
    assert status == 400
    assert "ordering" in body["detail"]


async def test_create_document_without_annotation(admin: Api, server: RunningServer) -> None:
    """POST /documents (Basic auth) with content, metadata and parent creates only a document."""
    parent = await upload_one(admin, "parent.pdf", pdf_bytes())
    before = await count_rows(server)
    data = form(
        [("child.png", png_bytes())],
        {"metadata": json.dumps({"project": "Market ABC"}), "parent": parent["url"]},
    )
    status, document = await basic_api(admin).post("/documents", data=data)
    assert status == 201, document
    assert document["original_file_name"] == "child.png"
    assert document["mime_type"] == "image/png"
    assert document["metadata"] == {"project": "Market ABC"}
    assert document["parent"] == parent["url"]
    assert document["annotations"] == []
    after = await count_rows(server)
    assert after["documents"] == before["documents"] + 1
    assert after["annotations"] == before["annotations"]
    assert after["uploads"] == before["uploads"]


async def test_create_document_from_raw_body_with_rfc5987_name(admin: Api) -> None:
    """POST /documents with a raw body takes its UTF-8 name from `filename*`."""
    status, document = await admin.post(
        "/documents",
        data=pdf_bytes(),
        headers={"Content-Disposition": "attachment; filename*=utf-8''document%20%F0%9F%8E%81.pdf"},
    )
    assert status == 201, document
    assert document["original_file_name"] == "document 🎁.pdf"


async def test_create_document_refusals(admin: Api, server: RunningServer) -> None:
    """POST /documents: no file, two files, bad metadata or an unknown parent → 400, nothing kept."""
    cases = [
        (form([("a.pdf", pdf_bytes()), ("b.pdf", pdf_bytes())]), "exactly one file"),
        (form([("a.pdf", pdf_bytes())], {"metadata": "[]"}), "metadata"),
        (form([("a.pdf", pdf_bytes())], {"parent": "/documents/9999"}), "parent"),
        (form([("a.pdf", pdf_bytes())], {"values": "{}"}), "values: unknown field"),
    ]
    for data, detail in cases:
        status, body = await admin.post("/documents", data=data)
        assert status == 400, body
        assert detail in body["detail"]
    assert (await count_rows(server))["documents"] == 0
    assert stored_files(server) == []


async def test_rossum_sdk_create_document(admin: Api, server: RunningServer) -> None:
    """The SDK's create_new_document (parts with empty file names) creates a document."""
    from rossum_api import AsyncRossumAPIClient
    from rossum_api.dtos import UserCredentials

    client = AsyncRossumAPIClient(
        base_url=server.api_url, credentials=UserCredentials(ADMIN_USER, ADMIN_PASSWORD)
    )
    content = pdf_bytes()
    document = await client.create_new_document("sdk.pdf", content, metadata={"a": 1})
    assert document.original_file_name == "sdk.pdf"
    assert document.metadata == {"a": 1}
    assert await client.retrieve_document_content(document.id) == content


async def test_patch_metadata(admin: Api) -> None:
    """PATCH changes metadata only; read-only fields are ignored, unknown ones refused."""
    document = await upload_one(admin, "a.pdf", pdf_bytes())
    status, patched = await admin.patch(
        document["url"], json={"metadata": {"translation_file_name": "Rechnung.pdf"}, "id": 5}
    )
    assert status == 200, patched
    assert patched["metadata"] == {"translation_file_name": "Rechnung.pdf"}
    assert patched["id"] == document["id"]
    status, body = await admin.patch(document["url"], json={"size": 1})
    assert status == 400
    assert body["detail"].startswith("size")
    status, body = await admin.patch(document["url"], json={"metadata": {"k": "v" * 5000}})
    assert status == 400
    assert "4096" in body["detail"]


async def test_delete_removes_records_and_unshared_bytes(admin: Api, server: RunningServer) -> None:
    """DELETE answers 204, removes the annotation too, and the blob once no document shares it."""
    content = pdf_bytes()
    first = await upload_one(admin, "a.pdf", content)
    second = await upload_one(admin, "b.pdf", content)
    status, _ = await admin.delete(first["url"])
    assert status == 204
    status, _ = await admin.get(first["url"])
    assert status == 404
    status, _ = await admin.get(first["annotations"][0])
    assert status == 404
    async with admin.session.get(second["content"], headers=admin.headers) as response:
        assert await response.read() == content  # the shared bytes stay
    status, _ = await admin.delete(second["url"])
    assert status == 204
    assert [p for p in stored_files(server) if p.name == second["s3_name"]] == []


async def test_documents_of_invisible_queues_are_404(admin: Api, server: RunningServer) -> None:
    """An annotator sees documents of assigned queues only; others answer 404, content included."""
    other = await add_queue(server, "Other")
    hidden = await upload_one(admin, "hidden.pdf", pdf_bytes(), queue=other)
    shown = await upload_one(admin, "shown.pdf", pdf_bytes())
    annotator = await admin.create_user("anna", "annotator", [QUEUE_ID])
    for path in (hidden["url"], hidden["content"]):
        status, _ = await annotator.get(path)
        assert status == 404
    status, _ = await annotator.patch(hidden["url"], json={"metadata": {}})
    assert status == 404
    status, listing = await annotator.get("/documents")
    assert [d["id"] for d in listing["results"]] == [shown["id"]]
    viewer = await admin.create_user("vera", "viewer", [QUEUE_ID])
    status, _ = await viewer.get(shown["url"])
    assert status == 200
    status, _ = await viewer.delete(shown["url"])
    assert status == 403
