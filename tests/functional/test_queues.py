"""The Queue API over real HTTP: the reference's curl examples, validation, permissions, counts,
deletion, templates and duplication (SQLite by default; PostgreSQL with POSTROOM_DATABASE_URL)."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from postroom.clock import utcnow
from postroom.db import tables as t
from postroom.domain.queues import COUNT_STATUSES
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, Api, RunningServer
from tests.queue_support import (
    QUEUE_FIELDS,
    add_annotations,
    add_hooks,
    first_queue,
    insert_rows,
    new_queue,
    when,
)

# ---------------------------------------------------------------- the reference's curl examples


async def test_list_example_returns_envelope_and_every_field(
    admin: Api, server: RunningServer
) -> None:
    """GET /queues?id=1,2,3 answers the pagination envelope and queues with every documented field."""
    status, body = await admin.get("/queues?id=1%2C2%2C3")
    assert status == 200
    assert body["pagination"] == {"total": 1, "total_pages": 1, "next": None, "previous": None}
    [queue] = body["results"]
    assert set(queue) >= QUEUE_FIELDS
    assert queue["url"] == f"{server.api_url}/queues/{queue['id']}"
    assert queue["counts"] == dict.fromkeys(COUNT_STATUSES, 0)
    assert queue["status"] == "active" and queue["delete_after"] is None
    assert queue["inbox"].startswith(f"{server.api_url}/inboxes/")
    assert queue["users"] == [f"{server.api_url}/users/1"]


async def test_create_example_answers_201_with_defaults(admin: Api, server: RunningServer) -> None:
    """POST {name, schema} creates a queue with the reference's defaults, stamped by its creator."""
    schema = (await first_queue(admin))["schema"]
    status, queue = await admin.post(
        "/queues", json={"name": "Received invoices", "schema": schema}
    )
    assert status == 201, queue
    assert set(queue) >= QUEUE_FIELDS
    assert queue["name"] == "Received invoices" and queue["schema"] == schema
    assert queue["workspace"] == f"{server.api_url}/workspaces/1"
    assert queue["inbox"] is None and queue["users"] == [] and queue["hooks"] == []
    assert queue["session_timeout"] == "01:00:00"
    assert queue["default_score_threshold"] == 0.8 and queue["automation_level"] == "never"
    assert queue["locale"] == "en_GB" and queue["document_lifetime"] is None
    assert queue["metadata"] == {} and queue["settings"] == {} and queue["workflows"] == []
    assert queue["modified_by"] == f"{server.api_url}/users/1"
    assert abs(when(queue["modified_at"]) - utcnow()) < timedelta(minutes=1)
    _, again = await admin.get(f"/queues/{queue['id']}", expect=200)
    assert again == queue


async def test_retrieve_patch_put_examples(admin: Api) -> None:
    """GET, PATCH {} and PUT {name, schema} of the reference answer 200 with the queue."""
    queue = await first_queue(admin)
    _, got = await admin.get(f"/queues/{queue['id']}", expect=200)
    assert got == queue
    _, patched = await admin.patch(f"/queues/{queue['id']}", json={}, expect=200)
    assert patched["name"] == queue["name"]
    assert when(patched["modified_at"]) >= when(queue["modified_at"])
    _, put = await admin.put(
        f"/queues/{queue['id']}",
        json={"name": "Received invoices", "schema": queue["schema"]},
        expect=200,
    )
    assert put["name"] == "Received invoices"
    assert put["inbox"] == queue["inbox"] and put["users"] == queue["users"]


async def test_put_back_a_fetched_object_ignores_read_only_fields(admin: Api) -> None:
    """A GET'd queue PUT back with a change is accepted: id/url/counts/status are ignored."""
    queue = await first_queue(admin)
    sent = {**queue, "name": "Renamed", "counts": {"to_review": 99}, "status": "deletion_failed",
            "id": 999, "url": "http://elsewhere/api/v1/queues/999", "unknown_field": 1}  # fmt: skip
    _, body = await admin.put(f"/queues/{queue['id']}", json=sent, expect=200)
    assert body["id"] == queue["id"] and body["name"] == "Renamed"
    assert body["status"] == "active" and body["counts"]["to_review"] == 0


async def test_delete_example_schedules_deletion(admin: Api, server: RunningServer) -> None:
    """DELETE answers 202 with no body, marks the queue and sets delete_after 24 h ahead."""
    queue = await first_queue(admin)
    status, body = await admin.delete(f"/queues/{queue['id']}")
    assert status == 202 and body is None
    _, after = await admin.get(f"/queues/{queue['id']}", expect=200)
    assert after["status"] == "deletion_requested"
    assert after["workspace"] is None
    expected = utcnow() + timedelta(hours=24)
    assert abs(when(after["delete_after"]) - expected) < timedelta(minutes=1)
    status, again = await admin.delete(f"/queues/{queue['id']}")
    assert status == 409 and again["code"] == "conflict_status"
    _, deleting = await admin.get("/queues?deleting=true", expect=200)
    assert [q["id"] for q in deleting["results"]] == [queue["id"]]
    _, active = await admin.get("/queues?deleting=false", expect=200)
    assert queue["id"] not in [q["id"] for q in active["results"]]


async def test_delete_after_query_parameter(admin: Api) -> None:
    """?delete_after=HH:MM:SS sets the delay; a malformed value is a 400 naming the parameter."""
    queue = await new_queue(admin)
    status, body = await admin.delete(f"/queues/{queue['id']}?delete_after=soon")
    assert status == 400 and "delete_after" in body["detail"]
    await admin.delete(f"/queues/{queue['id']}?delete_after=01:30:00", expect=202)
    _, after = await admin.get(f"/queues/{queue['id']}", expect=200)
    expected = utcnow() + timedelta(minutes=90)
    assert abs(when(after["delete_after"]) - expected) < timedelta(minutes=1)


async def test_related_objects_counts_example(admin: Api, server: RunningServer) -> None:
    """related_objects_counts counts the queue's emails and non-purged annotations."""
    queue = await first_queue(admin)
    _, empty = await admin.get(f"/queues/{queue['id']}/related_objects_counts", expect=200)
    assert empty == {"emails": 0, "annotations": 0, "documents": 0, "trained_dedicated_engines": 0}
    await add_annotations(server, queue, ["to_review", "exported", "purged"])
    _, counts = await admin.get(f"/queues/{queue['id']}/related_objects_counts", expect=200)
    assert counts["annotations"] == 2 and counts["documents"] == 2 and counts["emails"] == 0


INVALID_BODIES = [
    ({"name": None}, "name"),
    ({"name": "x" * 256}, "name"),
    ({"name": "   "}, "name"),
    ({"schema": None}, "schema"),
    ({"schema": "https://elsewhere/api/v1/schemas/999"}, "schema"),
    ({"schema": "not a url"}, "schema"),
    ({"default_score_threshold": 1.5}, "default_score_threshold"),
    ({"default_score_threshold": -0.1}, "default_score_threshold"),
    ({"default_score_threshold": "high"}, "default_score_threshold"),
    ({"automation_level": "sometimes"}, "automation_level"),
    ({"automation_enabled": "yes"}, "automation_enabled"),
    ({"generic_engine": "http://x/api/v1/generic_engines/1",
      "dedicated_engine": "http://x/api/v1/dedicated_engines/2"}, "dedicated_engine"),
    ({"session_timeout": "1 hour"}, "session_timeout"),
    ({"session_timeout": "00:00:00"}, "session_timeout"),
    ({"session_timeout": "01:99:00"}, "session_timeout"),
    ({"document_lifetime": "ninety days"}, "document_lifetime"),
    ({"workspace": "http://x/api/v1/workspaces/999"}, "workspace"),
    ({"inbox": "http://x/api/v1/inboxes/999"}, "inbox"),
    ({"users": ["http://x/api/v1/users/999"]}, "users"),
    ({"users": "http://x/api/v1/users/1"}, "users"),
    ({"hooks": ["http://x/api/v1/hooks/999"]}, "hooks"),
    ({"webhooks": ["http://x/api/v1/hooks/999"]}, "webhooks"),
    ({"metadata": ["not", "an", "object"]}, "metadata"),
    ({"settings": {"accepted_mime_types": ["pdf"]}}, "settings"),
    ({"settings": {"accepted_mime_types": "image/*"}}, "settings"),
    ({"settings": "nope"}, "settings"),
    ({"locale": "english please"}, "locale"),
    ({"workflows": {"url": "x"}}, "workflows"),
]  # fmt: skip


async def test_invalid_create_bodies_are_400_naming_the_field(admin: Api) -> None:
    """Every invalid value answers 400 bad_request naming the field, and creates nothing."""
    schema = (await first_queue(admin))["schema"]
    for change, field in INVALID_BODIES:
        status, body = await admin.post("/queues", json={"name": "Q", "schema": schema, **change})
        assert status == 400, (change, body)
        assert body["code"] == "bad_request" and field in body["detail"], (change, body)
    for missing in ("name", "schema"):
        sent = {"name": "Q", "schema": schema}
        del sent[missing]
        status, body = await admin.post("/queues", json=sent)
        assert status == 400 and missing in body["detail"] and "required" in body["detail"]
    status, body = await admin.post(
        "/queues", data=b"{oops", headers={"Content-Type": "application/json"}
    )
    assert status == 400 and body["code"] == "bad_request"
    _, listing = await admin.get("/queues", expect=200)
    assert listing["pagination"]["total"] == 1


async def test_invalid_patch_is_400_and_changes_nothing(admin: Api) -> None:
    """An invalid PATCH answers 400 and leaves the queue as it was (also the engine pair rule)."""
    queue = await new_queue(admin, generic_engine="http://x/api/v1/generic_engines/1")
    status, body = await admin.patch(
        f"/queues/{queue['id']}",
        json={"name": "New", "dedicated_engine": "http://x/api/v1/dedicated_engines/2"},
    )
    assert status == 400 and "dedicated_engine" in body["detail"]
    status, body = await admin.put(f"/queues/{queue['id']}", json={"name": "New"})
    assert status == 400 and "schema" in body["detail"]
    _, after = await admin.get(f"/queues/{queue['id']}", expect=200)
    assert after == queue
    _, switched = await admin.patch(
        f"/queues/{queue['id']}",
        json={"generic_engine": None, "dedicated_engine": "http://x/api/v1/dedicated_engines/2"},
        expect=200,
    )
    assert switched["generic_engine"] is None
    assert switched["dedicated_engine"] == "http://x/api/v1/dedicated_engines/2"


async def test_accepted_formats_are_stored_and_normalised(
    admin: Api, server: RunningServer
) -> None:
    """Durations, the webhooks alias, users, settings wildcards and metadata round-trip."""
    hooks = await add_hooks(admin, 2)
    queue = await new_queue(
        admin,
        document_lifetime="90 00:00:00",
        session_timeout="2:30:00",
        hooks=[hooks[0]],
        webhooks=[hooks[1]],
        users=[f"{server.api_url}/users/1"],
        settings={"accepted_mime_types": ["image/*", "application/pdf"], "custom": {"a": 1}},
        metadata={"some_key": "some_value"},
        default_score_threshold=1,
        locale="en_US",
        rir_url="https://all.rir.rossum.ai",
        rir_params="tables=false",
        workspace=None,
        workflows=[{"url": f"{server.api_url}/workflows/1", "priority": 2}],
    )
    assert queue["document_lifetime"] == "90 00:00:00"
    assert queue["session_timeout"] == "02:30:00"
    assert queue["hooks"] == [hooks[1]] and queue["webhooks"] == [hooks[1]]
    assert queue["users"] == [f"{server.api_url}/users/1"]
    assert queue["settings"]["accepted_mime_types"] == ["image/*", "application/pdf"]
    assert queue["metadata"] == {"some_key": "some_value"}
    assert queue["default_score_threshold"] == 1.0 and queue["workspace"] is None
    assert queue["rir_params"] == "tables=false" and queue["workflows"][0]["priority"] == 2
    for text, stored in (("3600", "01:00:00"), ("1 02:03:04.5", "1 02:03:04.500000")):
        _, body = await admin.patch(
            f"/queues/{queue['id']}", json={"document_lifetime": text}, expect=200
        )
        assert body["document_lifetime"] == stored


async def test_inbox_belongs_to_one_queue(admin: Api) -> None:
    """A queue may take a free inbox; an inbox already serving another queue is a 400."""
    source = await first_queue(admin)
    status, body = await admin.post(
        "/queues", json={"name": "Q", "schema": source["schema"], "inbox": source["inbox"]}
    )
    assert status == 400 and "inbox" in body["detail"]
    await admin.patch(f"/queues/{source['id']}", json={"inbox": None}, expect=200)
    queue = await new_queue(admin, inbox=source["inbox"])
    assert queue["inbox"] == source["inbox"]


# ---------------------------------------------------------------- counts, lists


async def test_counts_are_live_per_status(admin: Api, server: RunningServer) -> None:
    """counts reflect the annotations of each queue, in retrieve and in lists alike."""
    first = await first_queue(admin)
    other = await new_queue(admin)
    await add_annotations(server, first, ["to_review", "to_review", "exported", "purged"])
    await add_annotations(server, other, ["importing"])
    _, got = await admin.get(f"/queues/{first['id']}", expect=200)
    assert got["counts"] == {**dict.fromkeys(COUNT_STATUSES, 0), "to_review": 2, "exported": 1,
                             "purged": 1}  # fmt: skip
    _, listing = await admin.get("/queues?ordering=id", expect=200)
    by_id = {q["id"]: q["counts"] for q in listing["results"]}
    assert by_id[first["id"]] == got["counts"]
    assert by_id[other["id"]]["importing"] == 1 and sum(by_id[other["id"]].values()) == 1


async def test_list_filters_ordering_and_pages(admin: Api, server: RunningServer) -> None:
    """name, workspace, inbox, locale and id filters, ordering and page links all work."""
    first = await first_queue(admin)
    await new_queue(admin, name="Alpha", locale="en_US")
    await new_queue(admin, name="Beta", workspace=None)

    async def names(query: str) -> list[str]:
        _, body = await admin.get(f"/queues?{query}", expect=200)
        return [q["name"] for q in body["results"]]

    assert await names("name=Alpha") == ["Alpha"]
    assert await names("locale=en_US") == ["Alpha"]
    assert sorted(await names("workspace=1")) == sorted(["Alpha", first["name"]])
    assert await names(f"inbox={first['inbox'].rsplit('/', 1)[1]}") == [first["name"]]
    assert await names("ordering=-name&name=") == sorted(
        ["Alpha", "Beta", first["name"]], reverse=True
    )
    _, page = await admin.get("/queues?page_size=1&page=2&ordering=id", expect=200)
    assert page["pagination"]["total"] == 3 and page["pagination"]["total_pages"] == 3
    assert "page=3" in page["pagination"]["next"]
    assert page["pagination"]["next"].startswith(f"{server.api_url}/queues?")
    assert "page=1" in page["pagination"]["previous"]
    hooks = await add_hooks(admin, 1)
    await admin.patch(f"/queues/{first['id']}", json={"hooks": hooks}, expect=200)
    _, by_hook = await admin.get("/queues?ordering=-webhooks&hooks=" + hooks[0], expect=200)
    assert [q["id"] for q in by_hook["results"]] == [first["id"]]
    status, body = await admin.get("/queues?ordering=shoe_size")
    assert status == 400 and "ordering" in body["detail"]
    status, body = await admin.get("/queues?deleting=maybe")
    assert status == 400 and "deleting" in body["detail"]


# ---------------------------------------------------------------- permissions


async def test_role_table_for_queue_endpoints(admin: Api, server: RunningServer) -> None:
    """Annotators/viewers see assigned queues only (others 404) and may change none (403)."""
    assigned = await first_queue(admin)
    hidden = await new_queue(admin, name="Hidden")
    annotator = await admin.create_user("anna", "annotator", [assigned["id"]])
    viewer = await admin.create_user("vic", "viewer", [assigned["id"]])
    manager = await admin.create_user("meg", "manager")
    for client in (annotator, viewer):
        _, listing = await client.get("/queues", expect=200)
        assert [q["id"] for q in listing["results"]] == [assigned["id"]]
        await client.get(f"/queues/{assigned['id']}", expect=200)
        await client.get(f"/queues/{assigned['id']}/related_objects_counts", expect=200)
        for method, path, expected in (
            ("GET", f"/queues/{hidden['id']}", 404),
            ("GET", f"/queues/{hidden['id']}/related_objects_counts", 404),
            ("PATCH", f"/queues/{hidden['id']}", 404),
            ("DELETE", f"/queues/{hidden['id']}", 404),
            ("POST", f"/queues/{hidden['id']}/duplicate", 404),
            ("PATCH", f"/queues/{assigned['id']}", 403),
            ("PUT", f"/queues/{assigned['id']}", 403),
            ("DELETE", f"/queues/{assigned['id']}", 403),
            ("POST", f"/queues/{assigned['id']}/duplicate", 403),
            ("POST", "/queues", 403),
            ("POST", "/queues/from_template", 403),
        ):
            status, body = await client.call(method, path, json={"name": "x"})
            assert status == expected, (method, path, body)
            assert body["code"] == ("not_found" if expected == 404 else "access_forbidden")
    _, listing = await manager.get("/queues", expect=200)
    assert listing["pagination"]["total"] == 2
    created = await new_queue(manager, name="By manager")
    assert created["modified_by"].endswith(f"/users/{(await manager.get('/auth/user'))[1]['id']}")
    await manager.patch(f"/queues/{hidden['id']}", json={"name": "Seen"}, expect=200)
    await manager.delete(f"/queues/{hidden['id']}", expect=202)
    status, body = await admin.get("/queues/99999")
    assert status == 404 and body["code"] == "not_found"


async def test_queue_users_match_user_queues(admin: Api, server: RunningServer) -> None:
    """Setting queue.users assigns the queue to those users (user.queues shows it), and back."""
    queue = await new_queue(admin)
    annotator = await admin.create_user("ann", "annotator")
    _, me = await annotator.get("/auth/user", expect=200)
    await annotator.get(f"/queues/{queue['id']}", expect=404)
    await admin.patch(f"/queues/{queue['id']}", json={"users": [me["url"]]}, expect=200)
    _, me = await annotator.get("/auth/user", expect=200)
    assert queue["url"] in me["queues"]
    await annotator.get(f"/queues/{queue['id']}", expect=200)
    await admin.patch(f"/queues/{queue['id']}", json={"users": []}, expect=200)
    await annotator.get(f"/queues/{queue['id']}", expect=404)


async def test_postroom_cli_creates_a_queue(admin: Api, server: RunningServer) -> None:
    """`postroom queue create --name N` makes a queue with an inbox that the API then shows."""
    env = {**os.environ, "POSTROOM_STORAGE_DATA_DIR": str(server.data_dir)}
    env["POSTROOM_DATABASE_URL"] = server.settings.database_url
    postroom = Path(sys.executable).with_name("postroom")
    process = await asyncio.create_subprocess_exec(
        str(postroom), "queue", "create", "--name", "Made by CLI", "--schema", "1",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    queue_id, name, email = out.decode().strip().split("\t")
    assert name == "Made by CLI" and email.startswith("made-by-cli-")
    _, queue = await admin.get(f"/queues/{queue_id}", expect=200)
    assert queue["schema"].endswith("/schemas/1") and queue["inbox"] is not None


async def test_other_organizations_are_invisible(admin: Api, server: RunningServer) -> None:
    """A queue or schema of another organization answers 404 / 400, and is never listed."""
    now = utcnow()
    [org] = await insert_rows(server, t.organizations, [{"name": "Other", "created_at": now}])
    [schema] = await insert_rows(
        server, t.schemas, [{"organization_id": org, "name": "S", "content": []}]
    )
    [queue] = await insert_rows(
        server,
        t.queues,
        [{"organization_id": org, "name": "Theirs", "schema_id": schema, "created_at": now}],
    )
    status, body = await admin.get(f"/queues/{queue}")
    assert status == 404 and body["code"] == "not_found"
    await admin.patch(f"/queues/{queue}", json={"name": "Mine"}, expect=404)
    await admin.post(f"/queues/{queue}/duplicate", json={}, expect=404)
    _, listing = await admin.get(f"/queues?id={queue}", expect=200)
    assert listing["pagination"]["total"] == 0
    status, body = await admin.post(
        "/queues", json={"name": "Q", "schema": f"{server.api_url}/schemas/{schema}"}
    )
    assert status == 400 and "schema" in body["detail"]
    status, body = await admin.post("/queues", json={"name": "Q", "schema": True})
    assert status == 400 and "schema" in body["detail"]


async def test_list_runs_the_same_queries_for_any_page_size(server_factory: Any, http: Any) -> None:
    """Listing 3 or 30 queues costs the same number of SQL statements (counts are not N+1)."""
    from sqlalchemy import event

    # No workers or duties: only this test's requests reach the database while it counts.
    server = await server_factory(
        POSTROOM_PIPELINE_WORKERS="0", POSTROOM_PIPELINE_SWEEP_INTERVAL="3600"
    )
    admin = await Api(http, server.base, {}).login(ADMIN_USER, ADMIN_PASSWORD)

    for i in range(29):
        await new_queue(admin, name=f"q{i}")
    await add_annotations(server, await first_queue(admin), ["to_review"])
    assert server.service.runtime is not None
    engine = server.service.runtime.db.engine.sync_engine
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        statements.append(sql)

    event.listen(engine, "before_cursor_execute", count)
    try:
        sizes = {}
        for size in (3, 30):
            statements.clear()
            _, body = await admin.get(f"/queues?page_size={size}", expect=200)
            assert len(body["results"]) == size
            sizes[size] = len(statements)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert sizes[3] == sizes[30]


async def test_concurrent_attachments_of_one_inbox_leave_it_on_one_queue(admin: Api) -> None:
    """Queues racing to take the same free inbox: no 5xx, and the inbox ends on exactly one queue."""
    import asyncio

    schema = f"{admin.api}/schemas/1"
    queue_ids = []
    for name in ("Race A", "Race B", "Race C", "Race D"):
        _, queue = await admin.post("/queues", json={"name": name, "schema": schema}, expect=201)
        queue_ids.append(queue["id"])
    _, inbox = await admin.post(
        "/inboxes", json={"name": "Shared?", "email_prefix": "race"}, expect=201
    )
    results = await asyncio.gather(
        *(admin.patch(f"/queues/{q}", json={"inbox": inbox["url"]}) for q in queue_ids)
    )
    statuses = [status for status, _ in results]
    assert all(status in (200, 400, 409) for status in statuses), results
    holders = []
    for queue_id in queue_ids:
        _, queue = await admin.get(f"/queues/{queue_id}", expect=200)
        if queue["inbox"] == inbox["url"]:
            holders.append(queue_id)
    assert len(holders) == 1
    assert statuses.count(200) == 1
