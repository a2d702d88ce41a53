"""Queue copies over real HTTP: `POST /queues/from_template` with every shipped template and
`POST /queues/{id}/duplicate` with its copy flags."""

from __future__ import annotations

import re

import pytest

from postroom.db import tables as t
from postroom.domain.queues import COUNT_STATUSES
from tests.conftest import Api, RunningServer
from tests.queue_support import QUEUE_FIELDS, add_hooks, first_queue


async def test_from_template_example(admin: Api, server: RunningServer) -> None:
    """from_template creates a schema, an inbox and the queue with the template's settings."""
    queue = await first_queue(admin)
    status, body = await admin.post(
        "/queues/from_template",
        json={"name": "Invoice Processing - ACME Corp", "template_name": "EU Invoice Template",
              "workspace": f"{server.api_url}/workspaces/1", "include_documents": True,
              "engine": f"{server.api_url}/engines/8"},
    )  # fmt: skip
    assert status == 201, body
    assert set(body) >= QUEUE_FIELDS
    assert body["name"] == "Invoice Processing - ACME Corp"
    assert body["schema"] != queue["schema"] and body["engine"] == f"{server.api_url}/engines/8"
    assert body["workspace"] == f"{server.api_url}/workspaces/1"
    assert body["inbox"] is not None and body["locale"] == "en_GB"
    assert "application/pdf" in body["settings"]["accepted_mime_types"]
    assert server.service.runtime is not None
    async with server.service.runtime.db.reading() as conn:
        schema_id = int(body["schema"].rsplit("/", 1)[1])
        content = (
            (await conn.execute(t.schemas.select().where(t.schemas.c.id == schema_id)))
            .one()
            .content
        )
        inbox_id = int(body["inbox"].rsplit("/", 1)[1])
        email = (
            (await conn.execute(t.inboxes.select().where(t.inboxes.c.id == inbox_id))).one().email
        )
    assert any(s["id"] == "parties_section" for s in content)
    assert re.fullmatch(r"invoice-processing-acme-corp-[0-9a-f]{6}@localhost", email)


@pytest.mark.parametrize(
    ("template", "locale"),
    [("US Invoice Template", "en_US"), ("Empty Organization Template", "en_GB"),
     ("eu demo template", "en_GB")],
)  # fmt: skip
async def test_every_shipped_template_creates_a_queue(
    admin: Api, template: str, locale: str
) -> None:
    """Each shipped template (names case-insensitive, documented aliases too) gives a queue."""
    _, body = await admin.post(
        "/queues/from_template", json={"name": "T", "template_name": template}, expect=201
    )
    assert body["locale"] == locale and body["workspace"] is not None


async def test_from_template_refuses_unknown_names(admin: Api) -> None:
    """An unknown template_name is a 400 listing the available templates; nothing is created."""
    status, body = await admin.post(
        "/queues/from_template", json={"name": "T", "template_name": "Nope"}
    )
    assert status == 400 and "template_name" in body["detail"]
    assert "EU Invoice Template" in body["detail"]
    _, listing = await admin.get("/queues", expect=200)
    assert listing["pagination"]["total"] == 1


async def test_duplicate_example_copies_everything_by_default(
    admin: Api, server: RunningServer
) -> None:
    """duplicate copies settings, users and hooks; the copy has its own schema and inbox address."""
    hooks = await add_hooks(admin, 2)
    source = await first_queue(admin)
    await admin.patch(
        f"/queues/{source['id']}",
        json={"hooks": hooks, "automation_level": "always", "automation_enabled": True,
              "settings": {"automation": {"automate_duplicates": False},
                           "email_notifications": {"email_with_no_attachments": False}}},
        expect=200,
    )  # fmt: skip
    status, copy = await admin.post(
        f"/queues/{source['id']}/duplicate",
        json={"name": "Invoice Processing - ACME Corp (Copy)", "copy_extensions_settings": True,
              "copy_email_settings": True, "copy_delete_recommendations": True,
              "copy_automation_settings": True, "copy_permissions": True,
              "copy_rules_and_actions": True},
    )  # fmt: skip
    assert status == 201, copy
    assert copy["id"] != source["id"] and copy["name"] == "Invoice Processing - ACME Corp (Copy)"
    assert copy["hooks"] == hooks and copy["users"] == source["users"]
    assert copy["automation_level"] == "always" and copy["automation_enabled"] is True
    assert copy["settings"]["email_notifications"] == {"email_with_no_attachments": False}
    assert copy["schema"] != source["schema"] and copy["inbox"] != source["inbox"]
    assert copy["inbox"] is not None and copy["counts"] == dict.fromkeys(COUNT_STATUSES, 0)


async def test_duplicate_honours_copy_flags(admin: Api, server: RunningServer) -> None:
    """copy_* flags set to false leave hooks, users, automation and email settings behind."""
    hooks = await add_hooks(admin, 1)
    source = await first_queue(admin)
    await admin.patch(
        f"/queues/{source['id']}",
        json={"hooks": hooks, "automation_level": "confident",
              "settings": {"automation": {}, "email_notifications": {}, "columns": []}},
        expect=200,
    )  # fmt: skip
    _, copy = await admin.post(
        f"/queues/{source['id']}/duplicate",
        json={"copy_extensions_settings": False, "copy_email_settings": False,
              "copy_automation_settings": False, "copy_permissions": False},
        expect=201,
    )  # fmt: skip
    assert copy["name"] == f"{source['name']} (copy)"
    assert copy["hooks"] == [] and copy["users"] == []
    assert copy["automation_level"] == "never" and copy["settings"] == {"columns": []}


# ---------------------------------------------------------------- validation
