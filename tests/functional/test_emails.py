"""The Email REST API over real HTTP: list filters, retrieve, PATCH, raw content, counts, visibility,
`POST /emails/import` and `POST /queues/{id}/suggested_recipients`. Emails arrive over real SMTP
sessions (or through the import endpoint)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import sqlalchemy as sa

from postroom.db import tables as t
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, Api, RunningServer
from tests.smtp_support import (
    SENDER,
    add_queue_with_inbox,
    execute,
    inbox_address,
    message,
    pdf_bytes,
    send,
    set_queue,
    wait_for,
)

SDK_REQUIRED = ("id", "url", "queue", "inbox", "children", "documents", "from")


async def _mail(
    server: RunningServer,
    *,
    subject: str = "Invoice 42",
    sender: str = SENDER,
    name: str = "Supplier Ltd",
    pdf: bool = True,
    to: str | None = None,
) -> None:
    inbox = to or await inbox_address(server)
    files = [("invoice.pdf", pdf_bytes(), "application/pdf")] if pdf else []
    msg = message(inbox, subject=subject, sender=f"{name} <{sender}>", attachments=files)
    await send(server, msg, sender=sender)


def _ids(body: dict[str, Any]) -> list[int]:
    return [r["id"] for r in body["results"]]


async def test_retrieve_has_every_reference_field(server: RunningServer, admin: Api) -> None:
    """An email's JSON has the reference fields, SDK-required ones non-null, and URLs without a trailing slash."""
    await _mail(server)
    status, listing = await admin.get("/emails")
    assert status == 200 and listing["pagination"]["total"] == 1
    (email,) = listing["results"]
    for key in SDK_REQUIRED:
        assert email[key] is not None, key
    assert email["from"] == {"email": SENDER, "name": "Supplier Ltd"}
    assert email["url"] == f"{server.api_url}/emails/{email['id']}"
    assert email["queue"] == f"{server.api_url}/queues/1"
    assert email["inbox"].startswith(f"{server.api_url}/inboxes/")
    assert email["type"] == "incoming" and email["creator"] is None
    assert email["to"] == [{"email": await inbox_address(server), "name": ""}]
    assert email["labels"] == [] and email["children"] == []
    assert email["annotation_counts"]["annotations"] == 1
    assert email["filtered_out_document_count"] == 0
    assert email["content"] == email["url"] + "/content"
    assert email["message_id"].endswith("@example.com>")
    status, single = await admin.get(f"/emails/{email['id']}")
    assert status == 200 and single == email


async def test_rossum_sdk_reads_an_email(server: RunningServer) -> None:
    """The rossum-api SDK deserialises a stored email into its Email model."""
    from rossum_api import AsyncRossumAPIClient
    from rossum_api.dtos import UserCredentials

    await _mail(server)
    client = AsyncRossumAPIClient(
        base_url=server.api_url, credentials=UserCredentials(ADMIN_USER, ADMIN_PASSWORD)
    )
    services = server.service.runtime
    assert services is not None
    async with services.db.reading() as conn:
        email_id = await conn.scalar(sa.select(t.emails.c.id))
    email = await client.retrieve_email(email_id)
    assert email.from_ == {"email": SENDER, "name": "Supplier Ltd"}
    assert len(email.documents) == 1 and email.type == "incoming"


async def test_list_filters(server: RunningServer, admin: Api) -> None:
    """queue, inbox, from__email, has_documents, subject and created_at_* filters select the right emails."""
    await _mail(server, subject="March invoice", sender="a@one.test")
    await _mail(server, subject="Question", sender="b@two.test", pdf=False)
    queue_id, other = await add_queue_with_inbox(server, "Receipts")
    await _mail(server, subject="Receipt", sender="a@one.test", to=other)
    _, everything = await admin.get("/emails", params={"ordering": "id"})
    first, second, third = _ids(everything)

    async def ids(**params: str) -> list[int]:
        status, body = await admin.get("/emails", params={**params, "ordering": "id"})
        assert status == 200, body
        return _ids(body)

    assert await ids(queue=str(queue_id)) == [third]
    assert await ids(queue=f"{server.api_url}/queues/1") == [first, second]
    inbox_url = everything["results"][2]["inbox"]
    assert await ids(inbox=inbox_url) == [third]
    assert await ids(from__email="A@ONE.test") == [first, third]
    assert await ids(has_documents="false") == [second]
    assert await ids(has_documents="true") == [first, third]
    assert await ids(subject="invoice") == [first]
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert await ids(created_at_after=later) == []
    assert await ids(created_at_before=later) == [first, second, third]
    _, newest_first = await admin.get("/emails", params={"ordering": "-created_at,-id"})
    assert _ids(newest_first) == [third, second, first]
    status, body = await admin.get("/emails", params={"has_documents": "maybe"})
    assert status == 400 and "has_documents" in body["detail"]


async def test_content_is_the_raw_message(server: RunningServer, admin: Api) -> None:
    """GET /emails/{id}/content streams back the exact bytes received, as message/rfc822."""
    inbox = await inbox_address(server)
    msg = message(inbox, attachments=[("a.pdf", pdf_bytes(), "application/pdf")])
    raw = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
    await send(server, raw, recipients=[inbox])
    _, listing = await admin.get("/emails")
    url = listing["results"][0]["content"]
    async with admin.session.get(url, headers=admin.headers) as response:
        assert response.status == 200
        assert response.content_type == "message/rfc822"
        assert await response.read() == raw


async def test_patch_labels_metadata_subject(server: RunningServer, admin: Api) -> None:
    """PATCH changes labels, metadata and subject; an unknown label is a 400 naming it."""
    await _mail(server)
    _, listing = await admin.get("/emails")
    email = listing["results"][0]
    status, body = await admin.patch(
        f"/emails/{email['id']}",
        json={"labels": ["rejected"], "metadata": {"ticket": 7}, "subject": "Re-filed", "id": 1},
    )
    assert status == 200, body
    assert (body["labels"], body["metadata"], body["subject"]) == (
        ["rejected"],
        {"ticket": 7},
        "Re-filed",
    )
    status, body = await admin.patch(f"/emails/{email['id']}", json={"labels": ["spam"]})
    assert status == 400 and "spam" in body["detail"]
    status, body = await admin.patch(f"/emails/{email['id']}", json={"colour": "red"})
    assert status == 400 and "colour" in body["detail"]


async def test_counts(server: RunningServer, admin: Api) -> None:
    """GET /emails/counts counts all, without documents, and rejected incoming emails."""
    await _mail(server, subject="with pdf")
    await _mail(server, subject="no pdf", pdf=False)
    await execute(
        server,
        sa.update(t.emails).where(t.emails.c.subject == "with pdf").values(labels=["rejected"]),
    )
    status, body = await admin.get("/emails/counts")
    assert status == 200
    counts = body["incoming"]
    assert (counts["total"], counts["no_documents"], counts["rejected"]) == (2, 1, 1)
    assert counts["recent_with_no_documents_not_replied"] == 1
    assert counts["recent_with_filtered_out_documents"] == 0
    status, body = await admin.get("/emails/counts", params={"has_documents": "true"})
    assert body["incoming"]["total"] == 1


async def test_emails_of_unassigned_queues_are_invisible(server: RunningServer, admin: Api) -> None:
    """An annotator sees only emails of assigned queues (others 404); a viewer cannot PATCH (403)."""
    queue_id, other = await add_queue_with_inbox(server, "Receipts")
    await _mail(server)
    await _mail(server, to=other)
    _, listing = await admin.get("/emails", params={"ordering": "id"})
    mine, theirs = _ids(listing)
    annotator = await admin.create_user("ann", "annotator", [queue_id])
    status, body = await annotator.get("/emails")
    assert _ids(body) == [theirs]
    status, _ = await annotator.get(f"/emails/{mine}")
    assert status == 404
    viewer = await admin.create_user("view", "viewer", [queue_id])
    status, body = await viewer.patch(f"/emails/{theirs}", json={"labels": []})
    assert status == 403


async def _import(api: Api, raw: bytes, recipient: str, **fields: str) -> tuple[int, Any]:
    form = aiohttp.FormData()
    form.add_field("raw_message", raw, filename="email.eml", content_type="message/rfc822")
    form.add_field("recipient", recipient)
    for name, value in fields.items():
        form.add_field(name, value)
    return await api.post("/emails/import", data=form)


async def test_import_creates_email_task_and_annotation(server: RunningServer, admin: Api) -> None:
    """POST /emails/import answers 202 with an email_imported task whose result is the email; metadata and values reach the annotation."""
    inbox = await inbox_address(server)
    raw = message(inbox, attachments=[("a.pdf", pdf_bytes(), "application/pdf")]).as_bytes()
    status, body = await _import(
        admin,
        raw,
        inbox.upper(),
        metadata=json.dumps({"batch": "12"}),
        values=json.dumps({"emails_import:customer_id": "C-1"}),
    )
    assert status == 202, body
    status, task = await admin.get(body["url"], params={"no_redirect": "true"})
    assert task["type"] == "email_imported"

    async def finished() -> dict[str, Any] | None:
        _, current = await admin.get(body["url"], params={"no_redirect": "true"})
        return current if current["status"] == "succeeded" else None

    task = await wait_for(finished)
    _, email = await admin.get(task["result_url"])
    assert email["creator"].endswith("/users/1")
    (annotation_url,) = email["annotations"]
    _, annotation = await admin.get(annotation_url)
    assert annotation["metadata"] == {"batch": "12"}
    services = server.service.runtime
    assert services is not None
    async with services.db.reading() as conn:
        payload = await conn.scalar(sa.select(t.jobs.c.payload))
    assert payload["rir_values"]["emails_import:customer_id"] == "C-1"


async def test_import_refusals(server: RunningServer, admin: Api) -> None:
    """Import: non-admin 403, unknown recipient 400, values without the emails_import: prefix 400, deleted queue 409."""
    inbox = await inbox_address(server)
    raw = message(inbox).as_bytes()
    manager = await admin.create_user("boss", "manager")
    status, _ = await _import(manager, raw, inbox)
    assert status == 403
    status, body = await _import(admin, raw, "nobody@localhost")
    assert status == 400 and "recipient" in body["detail"]
    status, body = await _import(admin, raw, inbox, values=json.dumps({"note": "x"}))
    assert status == 400 and "emails_import:" in body["detail"]
    status, body = await _import(admin, b"", inbox)
    assert status == 400 and "raw_message" in body["detail"]
    await set_queue(server, status="deletion_requested")
    status, body = await _import(admin, raw, inbox)
    assert status == 409 and body["code"] == "conflict_status"


async def test_import_over_the_size_limit_is_413(server_factory, http) -> None:  # type: ignore[no-untyped-def]
    """A raw message larger than smtp.max_message_bytes is refused with 413 and stores nothing."""
    server = await server_factory(POSTROOM_SMTP_MAX_MESSAGE_BYTES="4096")
    admin = await Api(http, server.base, {}).login(ADMIN_USER, ADMIN_PASSWORD)
    inbox = await inbox_address(server)
    raw = message(inbox, body="x" * 10_000).as_bytes()
    status, body = await _import(admin, raw, inbox)
    assert status == 413 and body["code"] == "payload_too_large", body
    _, listing = await admin.get("/emails")
    assert listing["pagination"]["total"] == 0


async def test_sdk_import_email(server: RunningServer) -> None:
    """The rossum-api SDK's import_email gets a task URL, and the email appears."""
    from rossum_api import AsyncRossumAPIClient
    from rossum_api.dtos import UserCredentials

    inbox = await inbox_address(server)
    client = AsyncRossumAPIClient(
        base_url=server.api_url, credentials=UserCredentials(ADMIN_USER, ADMIN_PASSWORD)
    )
    task_url = await client.import_email(message(inbox).as_bytes(), inbox)
    assert task_url.startswith(f"{server.api_url}/tasks/")
    task = await client.retrieve_task(int(task_url.rsplit("/", 1)[-1]))
    assert task.type == "email_imported"


async def test_suggested_recipients(server: RunningServer, admin: Api) -> None:
    """The senders of the given annotations' emails, without duplicates, named from the header or the address."""
    await _mail(server, sender="don.joe@corp.us", name="")
    await _mail(server, sender="don.joe@corp.us", name="Don")
    await _mail(server, sender="jane@corp.us", name="Jane Roe")
    _, listing = await admin.get("/annotations", params={"ordering": "id"})
    annotations = [a["url"] for a in listing["results"]]
    assert len(annotations) == 3
    status, body = await admin.post(
        "/queues/1/suggested_recipients", json={"annotations": annotations}
    )
    assert status == 200, body
    assert body["results"] == [
        {"source": "email_header", "email": "don.joe@corp.us", "name": "Don Joe"},
        {"source": "email_header", "email": "jane@corp.us", "name": "Jane Roe"},
    ]
    status, body = await admin.post("/queues/999/suggested_recipients", json={})
    assert status == 404
    status, body = await admin.post(
        "/queues/1/suggested_recipients", json={"annotations": ["not a url"]}
    )
    assert status == 400 and "annotations" in body["detail"]
