"""Inboxes over real HTTP: generated addresses, prefix rules, queue links, stored settings."""

from __future__ import annotations

import re

import sqlalchemy as sa

from postroom.db import tables as t
from tests.conftest import Api, RunningServer
from tests.records import add_queue

SETTINGS = {
    "bounce_email_to": "joe@east-west-trading.com",
    "bounce_unprocessable_attachments": True,
    "bounce_postponed_annotations": True,
    "bounce_deleted_annotations": True,
    "bounce_email_with_no_attachments": False,
    "dmarc_check_action": "drop",
    "metadata": {"team": "ap"},
}


async def test_create_inbox_generates_address_and_links_queue(
    admin: Api, server: RunningServer
) -> None:
    """POST /inboxes makes <prefix>-<6 hex>@<domain> and points the given queue at the new inbox."""
    queue_id = await add_queue(server, "Receipts")
    queue_url = f"{server.api_url}/queues/{queue_id}"
    status, inbox = await admin.post(
        "/inboxes",
        json={
            "name": "Test Inbox",
            "email_prefix": "east-west-trading-co-test",
            "queues": [queue_url],
            "filters": {"allowed_senders": ["*@east-west-trading.com"]},
            **SETTINGS,
        },
    )
    assert status == 201, inbox
    assert re.fullmatch(r"east-west-trading-co-test-[0-9a-f]{6}@localhost", inbox["email"])
    assert inbox["email_prefix"] == "east-west-trading-co-test"
    assert inbox["url"] == f"{server.api_url}/inboxes/{inbox['id']}"
    assert inbox["queues"] == [queue_url]
    assert inbox["filters"]["allowed_senders"] == ["*@east-west-trading.com"]
    assert inbox["filters"]["denied_senders"] == []
    for key, value in SETTINGS.items():
        assert inbox[key] == value, key
    assert inbox["modified_by"] == f"{server.api_url}/users/1"
    assert (await admin.get(f"/inboxes/{inbox['id']}")) == (200, inbox)
    status, listed = await admin.get("/inboxes", params={"queue": str(queue_id)})
    assert [i["id"] for i in listed["results"]] == [inbox["id"]]


async def test_defaults_and_prefix_from_name(admin: Api) -> None:
    """Without a prefix the address derives from the name; the reference's defaults are returned."""
    status, inbox = await admin.post("/inboxes", json={"name": "Supplier Invoices!"})
    assert status == 201, inbox
    assert inbox["email_prefix"] == "supplier-invoices"
    assert re.fullmatch(r"supplier-invoices-[0-9a-f]{6}@localhost", inbox["email"])
    assert inbox["queues"] == [] and inbox["bounce_email_to"] is None
    assert inbox["bounce_email_with_no_attachments"] is True
    assert inbox["bounce_unprocessable_attachments"] is False
    assert inbox["dmarc_check_action"] == "accept"
    assert inbox["filters"] == {"allowed_senders": [], "denied_senders": []}


async def test_address_uses_configured_mail_domain(server_factory, http) -> None:  # type: ignore[no-untyped-def]
    """With smtp.domain set, generated addresses end with that domain."""
    server = await server_factory(POSTROOM_SMTP_DOMAIN="mail.example.com")
    admin = await Api(http, server.base, {}).login("admin", "admin-secret-password")
    status, inbox = await admin.post("/inboxes", json={"name": "x", "email_prefix": "acme"})
    assert status == 201
    assert re.fullmatch(r"acme-[0-9a-f]{6}@mail\.example\.com", inbox["email"])


async def test_bad_fields_are_400_naming_them(admin: Api) -> None:
    """Bad prefixes, addresses, filters, dmarc action and queue lists answer 400 naming the field."""
    cases = [
        ({"name": "x", "email_prefix": "Upper"}, "email_prefix"),
        ({"name": "x", "email_prefix": "a" * 58}, "email_prefix"),
        ({"name": "x", "email_prefix": "under_score"}, "email_prefix"),
        ({"name": "x", "email_prefix": ""}, "email_prefix"),
        ({"name": "x", "email": "someone@elsewhere.com"}, "email"),
        ({"name": "x", "bounce_email_to": "not-an-address"}, "bounce_email_to"),
        ({"name": "x", "dmarc_check_action": "reject"}, "dmarc_check_action"),
        ({"name": "x", "filters": {"allowed_senders": "*@x.com"}}, "filters.allowed_senders"),
        ({"name": "x", "queues": ["http://h/api/v1/queues/999"]}, "queues"),
        ({"name": "x", "queues": "http://h/api/v1/queues/1"}, "queues"),
        ({"email_prefix": "ok"}, "name"),
    ]
    for body, field in cases:
        status, err = await admin.post("/inboxes", json=body)
        assert status == 400, (body, err)
        assert err["code"] == "bad_request" and err["detail"].startswith(field), (body, err)
    status, listed = await admin.get("/inboxes")
    assert listed["pagination"]["total"] == 1  # only bootstrap's: nothing half-created


async def test_prefix_of_57_characters_is_accepted(admin: Api) -> None:
    """The longest allowed prefix (57 characters) is accepted."""
    status, inbox = await admin.post("/inboxes", json={"name": "x", "email_prefix": "a" * 57})
    assert status == 201 and inbox["email"].startswith("a" * 57 + "-")


async def test_at_most_one_queue_per_inbox(admin: Api, server: RunningServer) -> None:
    """Two queues for one inbox is a 400: an inbox feeds one queue."""
    other = await add_queue(server, "Other")
    queues = [f"{server.api_url}/queues/1", f"{server.api_url}/queues/{other}"]
    status, err = await admin.post("/inboxes", json={"name": "x", "queues": queues})
    assert status == 400 and err["detail"].startswith("queues")


async def test_patch_prefix_filters_and_queue_move(admin: Api, server: RunningServer) -> None:
    """PATCH a prefix makes a new address; filters replace; a queue moves once its inbox lets go."""
    status, inbox = await admin.post("/inboxes", json={"name": "Moves", "email_prefix": "moves"})
    path = f"/inboxes/{inbox['id']}"
    status, patched = await admin.patch(path, json={"email_prefix": "renamed"})
    assert status == 200 and re.fullmatch(r"renamed-[0-9a-f]{6}@localhost", patched["email"])
    status, patched = await admin.patch(path, json={"filters": {"denied_senders": ["spam@*"]}})
    assert patched["filters"]["denied_senders"] == ["spam@*"]
    assert patched["filters"]["allowed_senders"] == []
    status, err = await admin.patch(path, json={"queues": [f"{server.api_url}/queues/1"]})
    assert status == 409 and err["detail"].startswith("queues")  # queue 1 has inbox 1
    await admin.patch("/inboxes/1", json={"queues": []}, expect=200)
    status, patched = await admin.patch(path, json={"queues": [f"{server.api_url}/queues/1"]})
    assert status == 200 and patched["queues"] == [f"{server.api_url}/queues/1"]
    status, patched = await admin.patch(path, json={"queues": []})
    assert patched["queues"] == []


async def test_put_may_set_address_within_domain(admin: Api) -> None:
    """PUT requires a name and may set `email` itself within the mail domain (unique)."""
    status, inbox = await admin.post("/inboxes", json={"name": "Put", "email_prefix": "put"})
    path = f"/inboxes/{inbox['id']}"
    status, err = await admin.put(path, json={"email": "chosen@localhost"})
    assert status == 400 and err["detail"].startswith("name")
    status, put = await admin.put(path, json={"name": "Shiny", "email": "Chosen@localhost"})
    assert status == 200 and put["email"] == "chosen@localhost" and put["name"] == "Shiny"
    status, bootstrap = await admin.get("/inboxes/1")
    status, err = await admin.patch(path, json={"email": bootstrap["email"]})
    assert status == 400 and err["detail"].startswith("email")


async def test_delete_inbox_detaches_queue(admin: Api, server: RunningServer) -> None:
    """DELETE answers 204; the inbox is gone and its queue keeps existing without it."""
    status, _ = await admin.delete("/inboxes/1")
    assert status == 204
    assert (await admin.get("/inboxes/1"))[0] == 404
    services = server.service.runtime
    assert services is not None
    async with services.db.reading() as conn:
        inbox_id = (
            await conn.execute(sa.select(t.queues.c.inbox_id).where(t.queues.c.id == 1))
        ).scalar_one()
    assert inbox_id is None


async def test_annotator_sees_only_inboxes_of_assigned_queues(
    admin: Api, server: RunningServer
) -> None:
    """An annotator sees the inbox of its queue, gets 404 for others and 403 on writes."""
    status, other = await admin.post("/inboxes", json={"name": "Other"})
    annotator = await admin.create_user("inboxann", "annotator", [1])
    status, listed = await annotator.get("/inboxes")
    assert status == 200 and [i["id"] for i in listed["results"]] == [1]
    assert (await annotator.get(f"/inboxes/{other['id']}"))[0] == 404
    status, err = await annotator.patch("/inboxes/1", json={"name": "no"})
    assert status == 403 and err["code"] == "access_forbidden"
    assert (await annotator.post("/inboxes", json={"name": "no"}))[0] == 403
