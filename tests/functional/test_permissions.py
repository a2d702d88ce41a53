"""The permission rules as one table: role by endpoint → HTTP status, over real HTTP.

Admins and managers see every queue; annotators and viewers only their assigned queue (the
bootstrap queue here) and get 404 for any other. A visible object without the right to change it
answers 403. Only admins manage users and the organization. Hooks are for admins and managers.
Each role runs the whole table against a fresh service; every mismatch is reported at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import Api, RunningServer
from tests.records import add_queue

ROLES = ("admin", "manager", "annotator", "viewer", "anonymous")


@dataclass(frozen=True)
class Row:
    method: str
    path: str  # formatted with the ids of the setup records
    expect: tuple[int, int, int, int]  # admin, manager, annotator, viewer (anonymous: 401)
    body: dict[str, Any] | None = None

    def expected(self, role: str) -> int:
        return 401 if role == "anonymous" else self.expect[ROLES.index(role)]


ALL_READ = (200, 200, 200, 200)
SETUP_WRITE = (200, 200, 403, 403)
SETUP_CREATE = (201, 201, 403, 403)
SETUP_DELETE = (204, 204, 403, 403)
HIDDEN_READ = (200, 200, 404, 404)
ADMIN_ONLY = (200, 403, 403, 403)

# Order matters only for deletions, which come last.
TABLE = (
    Row("GET", "/auth/user", ALL_READ),
    # queues (web/queues.py)
    Row("GET", "/queues", ALL_READ),
    Row("GET", "/queues/{assigned}", ALL_READ),
    Row("GET", "/queues/{unassigned}", HIDDEN_READ),
    Row("GET", "/queues/{unassigned}/related_objects_counts", HIDDEN_READ),
    Row("POST", "/queues", SETUP_CREATE, {"name": "Perm", "schema": "{api}/schemas/1"}),
    Row("PATCH", "/queues/{assigned}", SETUP_WRITE, {"name": "Renamed"}),
    Row("PUT", "/queues/{assigned}", SETUP_WRITE, {"name": "Put", "schema": "{api}/schemas/1"}),
    Row("PATCH", "/queues/{unassigned}", (200, 200, 404, 404), {"name": "Renamed"}),
    # workspaces
    Row("GET", "/workspaces", ALL_READ),
    Row("GET", "/workspaces/1", ALL_READ),
    Row("POST", "/workspaces", SETUP_CREATE, {"name": "Perm"}),
    Row("PATCH", "/workspaces/1", SETUP_WRITE, {"name": "Renamed"}),
    # schemas
    Row("GET", "/schemas", ALL_READ),
    Row("GET", "/schemas/1", ALL_READ),
    Row("POST", "/schemas", SETUP_CREATE, {"name": "Perm", "content": []}),
    Row("PATCH", "/schemas/1", SETUP_WRITE, {"name": "Renamed"}),
    # inboxes: visible with the queue they feed
    Row("GET", "/inboxes", ALL_READ),
    Row("GET", "/inboxes/1", ALL_READ),
    Row("GET", "/inboxes/{hidden_inbox}", HIDDEN_READ),
    Row("POST", "/inboxes", SETUP_CREATE, {"name": "Perm", "email_prefix": "perm"}),
    Row("PATCH", "/inboxes/1", SETUP_WRITE, {"name": "Renamed"}),
    Row("PATCH", "/inboxes/{hidden_inbox}", (200, 200, 404, 404), {"name": "Renamed"}),
    # users, groups, organization
    Row("GET", "/users", ALL_READ),
    Row("GET", "/users/{target_user}", ALL_READ),
    Row("POST", "/users", (201, 403, 403, 403), {"username": "perm-user"}),
    Row("PATCH", "/users/{target_user}", ADMIN_ONLY, {"first_name": "Changed"}),
    Row("GET", "/groups", ALL_READ),
    Row("GET", "/groups/3", ALL_READ),
    Row("GET", "/organizations", ALL_READ),
    Row("GET", "/organizations/1", ALL_READ),
    Row("GET", "/organizations/2", (404, 404, 404, 404)),
    Row("PATCH", "/organizations/1", ADMIN_ONLY, {"name": "Renamed"}),
    # hooks
    Row("GET", "/hooks", (200, 200, 403, 403)),
    Row("GET", "/hooks/{hook}", (200, 200, 403, 403)),
    Row("POST", "/hooks", SETUP_CREATE, {"name": "Perm", "config": {"url": "https://h.example"}}),
    Row("PATCH", "/hooks/{hook}", SETUP_WRITE, {"active": False}),
    # deletions
    Row("DELETE", "/hooks/{hook}", SETUP_DELETE),
    Row("DELETE", "/users/{target_user}", (204, 403, 403, 403)),
    Row("DELETE", "/inboxes/{hidden_inbox}", (204, 204, 404, 404)),
    # A schema no assigned queue uses is not theirs to see.
    Row("DELETE", "/schemas/{spare_schema}", (204, 204, 404, 404)),
    Row("DELETE", "/workspaces/{spare_workspace}", SETUP_DELETE),
    Row("DELETE", "/queues/{unassigned}", (202, 202, 404, 404)),
    Row("DELETE", "/queues/{assigned}", (202, 202, 403, 403)),
)


async def _records(admin: Api, server: RunningServer) -> dict[str, Any]:
    """The objects the table refers to, made by the admin."""
    unassigned = await add_queue(server, "Unassigned")
    _, inbox = await admin.post(
        "/inboxes", json={"name": "Hidden", "queues": [f"{server.api_url}/queues/{unassigned}"]}
    )
    _, schema = await admin.post("/schemas", json={"name": "Spare", "content": []})
    _, workspace = await admin.post("/workspaces", json={"name": "Spare"})
    _, hook = await admin.post("/hooks", json={"name": "H", "config": {"url": "https://h.example"}})
    _, user = await admin.post("/users", json={"username": "target"})
    return {
        "api": server.api_url,
        "assigned": 1,
        "unassigned": unassigned,
        "hidden_inbox": inbox["id"],
        "spare_schema": schema["id"],
        "spare_workspace": workspace["id"],
        "hook": hook["id"],
        "target_user": user["id"],
    }


def _fill(value: Any, ids: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


async def _client(role: str, admin: Api, anon: Api) -> Api:
    if role == "admin":
        return admin
    if role == "anonymous":
        return anon
    return await admin.create_user(f"perm-{role}", role, [] if role == "manager" else [1])


@pytest.mark.parametrize("role", ROLES)
async def test_permission_table(role: str, admin: Api, anon: Api, server: RunningServer) -> None:
    """Every endpoint of the table answers the expected status for this role."""
    ids = await _records(admin, server)
    client = await _client(role, admin, anon)
    mismatches = []
    for row in TABLE:
        path = _fill(row.path, ids)
        kwargs = {"json": _fill(row.body, ids)} if row.body is not None else {}
        status, body = await client.call(row.method, path, **kwargs)
        if status != row.expected(role):
            mismatches.append(f"{row.method} {path}: {status} != {row.expected(role)} ({body})")
        if status >= 400:
            assert isinstance(body, dict) and body.get("code"), (row, body)
    assert not mismatches, "\n".join(mismatches)
