"""Annotation endpoints over real HTTP: the SDK reads them, filters, ordering, visibility,
PATCH metadata and the content tree."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from rossum_api import AsyncRossumAPIClient
from rossum_api.dtos import UserCredentials

from postroom.db import tables as t
from postroom.domain.queues import insert_queue
from postroom.runtime import Runtime
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, Api, RunningServer
from tests.pipeline_support import make_image, make_pdf, settled, submit

SDK_REQUIRED_LISTS = ("messages", "relations", "pages", "related_emails", "assignees", "labels")


def _svc(server: RunningServer) -> Runtime:
    assert server.service.runtime is not None
    return server.service.runtime


async def _second_queue(svc: Runtime) -> int:
    async with svc.db.transaction() as conn:
        first = (await conn.execute(sa.select(t.queues).where(t.queues.c.id == 1))).one()
        return await insert_queue(
            conn,
            first.organization_id,
            name="Second",
            schema_id=first.schema_id,
            workspace_id=first.workspace_id,
        )


async def test_sdk_reads_annotation_and_its_content(server: RunningServer, admin: Api) -> None:
    """The rossum-api SDK retrieves an imported annotation (no missing or null required field)
    and sideloads its content."""
    [annotation_id] = await submit(
        admin, [("a.pdf", make_pdf())], values={"upload:note": "from-sdk"}
    )
    await settled(admin, annotation_id)
    client = AsyncRossumAPIClient(
        base_url=server.api_url, credentials=UserCredentials(ADMIN_USER, ADMIN_PASSWORD)
    )
    annotation = await client.retrieve_annotation(annotation_id, sideloads=("content",))
    assert annotation.status == "to_review"
    assert annotation.url == f"{server.api_url}/annotations/{annotation_id}"
    assert annotation.automated is False and annotation.messages == []
    assert isinstance(annotation.content, list) and annotation.content[0]["category"] == "section"
    listed = [a.id async for a in client.list_annotations(status="to_review")]
    assert listed == [annotation_id]


async def test_annotation_json_has_every_reference_field(server: RunningServer, admin: Api) -> None:
    """An annotation carries lists (never null), absolute URLs and ISO timestamps with Z."""
    [annotation_id] = await submit(admin, [("a.pdf", make_pdf())], metadata={"k": "v"})
    body = await settled(admin, annotation_id)
    for name in SDK_REQUIRED_LISTS:
        assert isinstance(body[name], list), name
    assert body["content"] == f"{server.api_url}/annotations/{annotation_id}/content"
    assert body["schema"].startswith(server.api_url + "/schemas/")
    assert body["document"].startswith(server.api_url + "/documents/")
    assert body["queue"] == f"{server.api_url}/queues/1"
    assert body["creator"].startswith(server.api_url + "/users/")
    assert body["created_at"].endswith("Z") and body["arrived_at"].endswith("Z")
    assert body["metadata"] == {"k": "v"}
    assert body["time_spent"] == 0 and body["modifier"] is None


async def test_list_filters_and_ordering(server: RunningServer, admin: Api) -> None:
    """status, id, document, queue and created_at filters narrow the list; ordering sorts it."""
    ids = await submit(
        admin, [("a.pdf", make_pdf()), ("b.pdf", make_pdf()), ("c.png", make_image())]
    )
    bodies = [await settled(admin, i) for i in ids]
    _s, page = await admin.get("/annotations", params={"ordering": "-id"}, expect=200)
    assert [r["id"] for r in page["results"]] == sorted(ids, reverse=True)
    assert page["pagination"]["total"] == 3
    _s, page = await admin.get("/annotations", params={"id": f"{ids[0]},{ids[2]}"}, expect=200)
    assert {r["id"] for r in page["results"]} == {ids[0], ids[2]}
    document_id = bodies[1]["document"].rsplit("/", 1)[1]
    _s, page = await admin.get("/annotations", params={"document": document_id}, expect=200)
    assert [r["id"] for r in page["results"]] == [ids[1]]
    _s, page = await admin.get("/annotations", params={"status": "exported,failed_import"})
    assert page["results"] == []
    _s, page = await admin.get("/annotations", params={"queue": "1", "status": "to_review"})
    assert page["pagination"]["total"] == 3
    later = bodies[2]["created_at"]
    _s, page = await admin.get("/annotations", params={"created_at_after": "2999-01-01"})
    assert page["pagination"]["total"] == 0
    _s, page = await admin.get("/annotations", params={"created_at_before": later})
    assert ids[2] not in [r["id"] for r in page["results"]]  # `before` is exclusive
    _s, page = await admin.get("/annotations", params={"created_at_after": later})
    assert ids[2] in [r["id"] for r in page["results"]]  # `after` is inclusive
    _s, page = await admin.get(
        "/annotations", params={"ordering": "-document__original_file_name", "page_size": "2"}
    )
    assert [r["id"] for r in page["results"]] == [ids[2], ids[1]]
    assert page["pagination"]["next"] is not None


async def test_bad_list_parameters_are_400(server: RunningServer, admin: Api) -> None:
    """A malformed timestamp or unknown ordering field answers 400 naming the parameter."""
    status, body = await admin.get("/annotations", params={"arrived_at_after": "yesterday"})
    assert status == 400 and "arrived_at_after" in body["detail"]
    status, body = await admin.get("/annotations", params={"ordering": "nope"})
    assert status == 400 and "ordering" in body["detail"]


async def test_annotators_see_only_assigned_queues(server: RunningServer, admin: Api) -> None:
    """An annotator assigned to queue 1 lists and reads its annotations; queue 2's answer 404."""
    svc = _svc(server)
    second = await _second_queue(svc)
    [mine] = await submit(admin, [("a.pdf", make_pdf())], queue_id=1)
    [hidden] = await submit(admin, [("b.pdf", make_pdf())], queue_id=second)
    await settled(admin, mine)
    await settled(admin, hidden)
    annotator = await admin.create_user("anna", "annotator", [1])
    _s, page = await annotator.get("/annotations", expect=200)
    assert [r["id"] for r in page["results"]] == [mine]
    status, body = await annotator.get(f"/annotations/{hidden}")
    assert status == 404 and body["code"] == "not_found"
    status, _ = await annotator.get(f"/annotations/{hidden}/content")
    assert status == 404
    status, _ = await annotator.patch(f"/annotations/{hidden}", json={"metadata": {}})
    assert status == 404


async def test_patch_metadata(server: RunningServer, admin: Api) -> None:
    """PATCH metadata replaces it (200, persisted, modifier stamped); bad metadata is 400;
    a viewer gets 403."""
    [annotation_id] = await submit(admin, [("a.pdf", make_pdf())])
    await settled(admin, annotation_id)
    status, body = await admin.patch(
        f"/annotations/{annotation_id}", json={"metadata": {"erp": 42}, "id": 999}
    )
    assert status == 200 and body["metadata"] == {"erp": 42} and body["id"] == annotation_id
    assert body["modified_at"] is not None
    _s, again = await admin.get(f"/annotations/{annotation_id}")
    assert again["metadata"] == {"erp": 42}
    status, err = await admin.patch(f"/annotations/{annotation_id}", json={"metadata": [1]})
    assert status == 400 and "metadata" in err["detail"]
    status, err = await admin.patch(
        f"/annotations/{annotation_id}", json={"metadata": {"x": "y" * 5000}}
    )
    assert status == 400 and "4096" in err["detail"]
    viewer = await admin.create_user("vic", "viewer", [1])
    status, err = await viewer.patch(f"/annotations/{annotation_id}", json={"metadata": {}})
    assert status == 403 and err["code"] == "access_forbidden"


async def test_content_tree_shape(server: RunningServer, admin: Api) -> None:
    """GET content answers {"content": sections}; each node has id, url, schema_id, category and
    datapoints carry the full content object."""
    [annotation_id] = await submit(admin, [("a.pdf", make_pdf())])
    await settled(admin, annotation_id)
    _s, body = await admin.get(f"/annotations/{annotation_id}/content", expect=200)
    sections = body["content"]
    assert [s["schema_id"] for s in sections][:2] == ["basic_info_section", "amounts_section"]
    seen: list[int] = []

    def walk(node: dict[str, Any]) -> None:
        seen.append(node["id"])
        assert node["url"].endswith(f"/annotations/{annotation_id}/content/{node['id']}")
        if node["category"] == "datapoint":
            assert set(node["content"]) >= {
                "value",
                "normalized_value",
                "page",
                "position",
                "rir_text",
                "rir_position",
                "rir_confidence",
                "connector_text",
            }
        for child in node.get("children", []):
            walk(child)

    for section in sections:
        walk(section)
    assert len(seen) == len(set(seen))
    line_items = next(s for s in sections if s["schema_id"] == "line_items_section")
    assert line_items["children"][0]["category"] == "multivalue"
    assert line_items["children"][0]["children"] == []


async def test_missing_annotation_is_404(admin: Api) -> None:
    """An id that does not exist answers 404 in the error shape; a non-numeric id 400."""
    status, body = await admin.get("/annotations/987654")
    assert status == 404 and body["code"] == "not_found"
    status, body = await admin.get("/annotations/abc")
    assert status in (400, 404)


async def test_list_sideloads_content_and_documents(server: RunningServer, admin: Api) -> None:
    """The SDK lists annotations with sideloaded content and documents; content.schema_id
    narrows the datapoints; other reference sideloads answer an empty list."""
    ids = await submit(
        admin, [("a.pdf", make_pdf()), ("b.pdf", make_pdf())], values={"upload:note": "hello"}
    )
    for annotation_id in ids:
        await settled(admin, annotation_id)
    client = AsyncRossumAPIClient(
        base_url=server.api_url, credentials=UserCredentials(ADMIN_USER, ADMIN_PASSWORD)
    )
    listed = [
        a
        async for a in client.list_annotations(
            sideloads=("content", "documents"), content_schema_ids=("note", "document_id")
        )
    ]
    assert [a.id for a in listed] == ids
    for annotation in listed:
        notes = [dp for dp in annotation.content if dp["schema_id"] == "note"]
        assert notes[0]["content"]["value"] == "hello"
        assert annotation.document.original_file_name in ("a.pdf", "b.pdf")
    _s, page = await admin.get(
        "/annotations",
        params={"sideload": "content,modifiers", "content.schema_id": "note"},
        expect=200,
    )
    assert {dp["schema_id"] for dp in page["content"]} == {"note"}
    assert len(page["content"]) == 2 and page["modifiers"] == []
