"""What a user may not see never leaks through another answer: a `reject_identical` 409 names the
existing document only to a user who may see it, and annotators and viewers read only the
schemas of their queues (and of the annotations in them)."""

from __future__ import annotations

import re

from tests.conftest import Api, RunningServer
from tests.records import add_queue
from tests.upload_helpers import form, pdf_bytes

URL_RE = re.compile(r"https?://\S+/api/v1/\w+/\d+")


async def test_reject_identical_names_the_document_only_to_who_may_see_it(
    admin: Api, server: RunningServer
) -> None:
    """The same bytes and name exist in a queue the annotator is not assigned to: 409 without a
    URL; in a queue they see (or for the admin): 409 naming the document."""
    hidden = await add_queue(server, "Hidden")
    annotator = await admin.create_user("leakann", "annotator", [1])
    content = pdf_bytes(tag="secret")
    await admin.post(f"/uploads?queue={hidden}", data=form([("inv.pdf", content)]), expect=202)

    url = "/uploads?queue=1&reject_identical=true"
    status, err = await annotator.post(url, data=form([("inv.pdf", content)]))
    assert status == 409, err
    assert "inv.pdf" in err["detail"]
    assert not URL_RE.search(err["detail"]), err["detail"]
    assert "/documents/" not in err["detail"] and "/annotations/" not in err["detail"]

    status, err = await admin.post(url, data=form([("inv.pdf", content)]))
    assert status == 409 and URL_RE.search(err["detail"]), err

    mine = pdf_bytes(tag="mine")
    await annotator.post("/uploads?queue=1", data=form([("own.pdf", mine)]), expect=202)
    status, err = await annotator.post(url, data=form([("own.pdf", mine)]))
    assert status == 409 and URL_RE.search(err["detail"]), err


async def test_annotator_reads_only_schemas_of_assigned_queues(
    admin: Api, server: RunningServer
) -> None:
    """A schema used only by an unassigned queue: 404 for annotators and viewers and left out of
    their list; their queue's schema, and the schema its annotations keep after the queue moved
    to another one, stay readable."""
    _, private = await admin.post("/schemas", json={"name": "Private", "content": []}, expect=201)
    await add_queue(server, "Elsewhere", schema_id=private["id"])
    annotator = await admin.create_user("schemaleak", "annotator", [1])
    viewer = await admin.create_user("schemaview", "viewer", [1])
    for user in (annotator, viewer):
        status, err = await user.get(f"/schemas/{private['id']}")
        assert status == 404 and err["code"] == "not_found"
        _, listed = await user.get("/schemas")
        assert [s["id"] for s in listed["results"]] == [1]
        assert (await user.get(f"/schemas?id={private['id']}"))[1]["results"] == []
    _, shown = await admin.get("/schemas", expect=200)
    assert {s["id"] for s in shown["results"]} == {1, private["id"]}

    _, upload = await admin.post(
        "/queues/1/upload", data=form([("a.pdf", pdf_bytes())]), expect=201
    )
    _, fresh = await admin.post("/schemas", json={"name": "Fresh", "content": []}, expect=201)
    await admin.patch("/queues/1", json={"schema": fresh["url"]}, expect=200)
    _, annotation = await annotator.get(upload["annotation"], expect=200)
    assert annotation["schema"].endswith("/schemas/1")
    await annotator.get("/schemas/1", expect=200)
    await annotator.get(f"/schemas/{fresh['id']}", expect=200)
    assert (await annotator.get(f"/schemas/{private['id']}"))[0] == 404
