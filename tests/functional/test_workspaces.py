"""Workspaces over real HTTP: fields, CRUD, validation, the queues they hold, visibility."""

from __future__ import annotations

from tests.conftest import Api, RunningServer
from tests.records import add_queue


async def test_create_retrieve_update_delete_workspace(admin: Api, server: RunningServer) -> None:
    """POST answers 201 with the reference's fields; GET, PATCH, PUT and DELETE (204) follow."""
    status, created = await admin.post(
        "/workspaces",
        json={"name": "Test Workspace", "organization": f"{server.api_url}/organizations/1"},
    )
    assert status == 201, created
    assert created == {
        "id": created["id"],
        "name": "Test Workspace",
        "url": f"{server.api_url}/workspaces/{created['id']}",
        "autopilot": False,
        "organization": f"{server.api_url}/organizations/1",
        "queues": [],
        "metadata": {},
    }
    path = f"/workspaces/{created['id']}"
    assert (await admin.get(path)) == (200, created)
    status, patched = await admin.patch(path, json={"name": "Important", "metadata": {"a": 1}})
    assert status == 200 and patched["name"] == "Important" and patched["metadata"] == {"a": 1}
    status, put = await admin.put(path, json={**patched, "name": "My Workspace"})
    assert status == 200 and put["name"] == "My Workspace" and put["metadata"] == {"a": 1}
    status, _ = await admin.delete(path)
    assert status == 204
    status, gone = await admin.get(path)
    assert status == 404 and gone["code"] == "not_found"


async def test_workspace_lists_its_queues_and_refuses_deletion(
    admin: Api, server: RunningServer
) -> None:
    """The bootstrap workspace shows its queue URLs; deleting a workspace with queues is 409."""
    second = await add_queue(server, "Second")
    status, body = await admin.get("/workspaces/1")
    assert status == 200
    assert body["queues"] == [f"{server.api_url}/queues/1", f"{server.api_url}/queues/{second}"]
    status, err = await admin.delete("/workspaces/1")
    assert status == 409 and err["code"] == "conflict_status" and "queues" in err["detail"]


async def test_workspace_list_filters_and_ordering(admin: Api) -> None:
    """The list has the pagination envelope, filters by name and id, and orders by -id."""
    for name in ("Alpha", "Beta"):
        assert (await admin.post("/workspaces", json={"name": name}))[0] == 201
    status, body = await admin.get("/workspaces", params={"name": "Beta"})
    assert status == 200
    assert body["pagination"] == {"total": 1, "total_pages": 1, "next": None, "previous": None}
    assert [w["name"] for w in body["results"]] == ["Beta"]
    status, body = await admin.get("/workspaces", params={"ordering": "-id", "page_size": "2"})
    assert [w["name"] for w in body["results"]] == ["Beta", "Alpha"]
    assert body["pagination"]["total"] == 3 and body["pagination"]["next"]


async def test_workspace_validation_names_the_field(admin: Api) -> None:
    """Missing, null, too long names and a foreign organization are 400s naming the field."""
    cases = [
        ({}, "name"),
        ({"name": None}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"name": "ok", "organization": "http://h/api/v1/organizations/99"}, "organization"),
        ({"name": "ok", "metadata": []}, "metadata"),
    ]
    for body, field in cases:
        status, err = await admin.post("/workspaces", json=body)
        assert status == 400, (body, err)
        assert err["code"] == "bad_request" and err["detail"].startswith(field), err
    status, _ = await admin.put("/workspaces/1", json={"metadata": {}})
    assert status == 400


async def test_annotator_sees_only_assigned_queues_of_a_workspace(
    admin: Api, server: RunningServer
) -> None:
    """An annotator reads workspaces, sees only its assigned queues in them, and cannot write (403)."""
    hidden = await add_queue(server, "Hidden")
    annotator = await admin.create_user("wsann", "annotator", [1])
    status, body = await annotator.get("/workspaces/1")
    assert status == 200
    assert body["queues"] == [f"{server.api_url}/queues/1"]
    assert f"{server.api_url}/queues/{hidden}" not in body["queues"]
    status, err = await annotator.post("/workspaces", json={"name": "No"})
    assert status == 403 and err["code"] == "access_forbidden"
    status, _ = await annotator.patch("/workspaces/1", json={"name": "No"})
    assert status == 403


async def test_ids_beyond_the_integer_range_are_not_server_errors(admin: Api) -> None:
    """Ids too large for an INTEGER column answer 404 (paths), empty lists (filters) or 400 (bodies)."""
    huge = "99999999999"
    for collection in ("workspaces", "schemas", "inboxes", "users", "hooks", "organizations"):
        status, err = await admin.get(f"/{collection}/{huge}")
        assert status == 404 and err["code"] == "not_found", collection
    for path in ("/workspaces?id=", "/users?queue=", "/schemas?queue=", "/inboxes?queue="):
        status, body = await admin.get(path + huge)
        assert status == 200 and body["results"] == [], path
    status, err = await admin.post("/workspaces", json={"name": "x", "organization": int(huge)})
    assert status == 400 and err["detail"].startswith("organization")
    status, err = await admin.post("/users", json={"username": "x", "queues": [int(huge)]})
    assert status == 400 and err["detail"].startswith("queues")


async def test_page_beyond_any_offset_is_400(admin: Api) -> None:
    """A page number too large for an SQL OFFSET is a 400 naming `page`, not a server error."""
    status, err = await admin.get("/workspaces", params={"page": "9" * 21})
    assert status == 400 and err["detail"].startswith("page")
    status, body = await admin.get("/workspaces", params={"page": "1000"})
    assert status == 200 and body["results"] == [] and body["pagination"]["next"] is None
