"""Users, groups and the organization over real HTTP: roles, queue assignment, passwords, deletion."""

from __future__ import annotations

import asyncio

from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, Api, RunningServer
from tests.records import add_queue


def _group(server: RunningServer, group_id: int) -> str:
    return f"{server.api_url}/groups/{group_id}"


async def test_admin_creates_user_with_role_and_queues(admin: Api, server: RunningServer) -> None:
    """POST /users (201) stores the role from `groups` and `queues`; the password is never shown."""
    status, user = await admin.post(
        "/users",
        json={
            "organization": f"{server.api_url}/organizations/1",
            "username": "jane@east-west-trading.com",
            "email": "jane@east-west-trading.com",
            "first_name": "Jane",
            "password": "jane-long-password",
            "queues": [f"{server.api_url}/queues/1"],
            "groups": [_group(server, 2)],
        },
    )
    assert status == 201, user
    assert "password" not in user
    assert user["url"] == f"{server.api_url}/users/{user['id']}"
    assert user["groups"] == [_group(server, 2)]
    assert user["queues"] == [f"{server.api_url}/queues/1"]
    assert user["organization"] == f"{server.api_url}/organizations/1"
    assert user["email"] == "jane@east-west-trading.com" and user["first_name"] == "Jane"
    assert user["is_active"] is True and user["deleted"] is False
    assert user["last_login"] is None and user["date_joined"].endswith("Z")
    jane = await admin.login("jane@east-west-trading.com", "jane-long-password")
    status, me = await jane.get("/auth/user")
    assert status == 200 and me["id"] == user["id"]


async def test_user_without_password_cannot_log_in(
    admin: Api, anon: Api, server: RunningServer
) -> None:
    """A user created without password or groups is a viewer with no usable password."""
    status, user = await admin.post("/users", json={"username": "technical"})
    assert status == 201 and user["groups"] == [_group(server, 1)]
    status, _ = await anon.post("/auth/login", json={"username": "technical", "password": ""})
    assert status in (400, 401)
    status, _ = await anon.post("/auth/login", json={"username": "technical", "password": "x" * 12})
    assert status == 401


async def test_user_validation_names_the_field(admin: Api, server: RunningServer) -> None:
    """Bad or duplicate usernames, groups, queues, passwords and organizations are 400 naming the field."""
    cases = [
        ({}, "username"),
        ({"username": ""}, "username"),
        ({"username": ADMIN_USER}, "username"),
        ({"username": "u1", "groups": [f"{server.api_url}/groups/99"]}, "groups"),
        ({"username": "u1", "groups": [_group(server, 2), _group(server, 3)]}, "groups"),
        ({"username": "u1", "queues": [f"{server.api_url}/queues/99"]}, "queues"),
        ({"username": "u1", "password": "short"}, "password"),
        ({"username": "u1", "password": "1234567890"}, "password"),
        ({"username": "u1", "organization": "http://h/api/v1/organizations/2"}, "organization"),
        ({"username": "u1", "is_active": "yes"}, "is_active"),
        ({"username": "u1", "email": "no-at-sign"}, "email"),
    ]
    for body, field in cases:
        status, err = await admin.post("/users", json=body)
        assert status == 400, (body, err)
        assert err["code"] == "bad_request" and err["detail"].startswith(field), (body, err)
    status, listed = await admin.get("/users")
    assert listed["pagination"]["total"] == 1


async def test_only_admins_create_users(admin: Api) -> None:
    """Managers, annotators and viewers get 403 on POST /users but may list and read users."""
    for role in ("manager", "annotator", "viewer"):
        client = await admin.create_user(f"{role}-x", role, [1])
        status, err = await client.post("/users", json={"username": f"by-{role}"})
        assert status == 403 and err["code"] == "access_forbidden"
        status, listed = await client.get("/users")
        assert status == 200 and listed["pagination"]["total"] >= 2
        assert (await client.get("/users/1"))[0] == 200


async def test_user_list_filters(admin: Api, server: RunningServer) -> None:
    """Users filter by username, groups, queue and is_active, and order by username."""
    other = await add_queue(server, "Other")
    await admin.create_user("ann", "annotator", [1])
    await admin.create_user("vic", "viewer", [other])
    _, body = await admin.get("/users", params={"username": "ann"})
    assert [u["username"] for u in body["results"]] == ["ann"]
    _, body = await admin.get("/users", params={"groups": "1"})
    assert [u["username"] for u in body["results"]] == ["vic"]
    _, body = await admin.get("/users", params={"queue": str(other)})
    assert [u["username"] for u in body["results"]] == ["vic"]
    _, body = await admin.get("/users", params={"ordering": "-username"})
    assert [u["username"] for u in body["results"]] == ["vic", "ann", "admin"]
    _, body = await admin.get("/users", params={"is_active": "false"})
    assert body["results"] == []


async def test_patch_password_revokes_tokens(admin: Api, anon: Api) -> None:
    """An admin setting a password (PATCH) revokes that user's tokens; the new password works."""
    ann = await admin.create_user("pwann", "annotator", [1])
    status, me = await ann.get("/auth/user")
    status, _ = await admin.patch(f"/users/{me['id']}", json={"password": "brand-new-secret"})
    assert status == 200
    assert (await ann.get("/auth/user"))[0] == 401
    fresh = await anon.login("pwann", "brand-new-secret")
    assert (await fresh.get("/auth/user"))[0] == 200


async def test_patch_role_and_queues(admin: Api, server: RunningServer) -> None:
    """PATCH groups changes the role at once; PATCH queues replaces the assignment."""
    other = await add_queue(server, "Other")
    ann = await admin.create_user("promote", "annotator", [1])
    status, me = await ann.get("/auth/user")
    status, user = await admin.patch(
        f"/users/{me['id']}",
        json={"groups": [_group(server, 4)], "queues": [f"{server.api_url}/queues/{other}"]},
    )
    assert status == 200
    assert user["groups"] == [_group(server, 4)]
    assert user["queues"] == [f"{server.api_url}/queues/{other}"]
    status, _ = await ann.post("/workspaces", json={"name": "now allowed"})
    assert status == 201


async def test_users_edit_only_their_own_profile(admin: Api, server: RunningServer) -> None:
    """A non-admin may change its own name and ui_settings, not its role nor other users (403)."""
    ann = await admin.create_user("selfie", "annotator", [1])
    status, me = await ann.get("/auth/user")
    status, user = await ann.patch(
        f"/users/{me['id']}", json={"first_name": "Self", "ui_settings": {"locale": "cs"}}
    )
    assert (
        status == 200 and user["first_name"] == "Self" and user["ui_settings"] == {"locale": "cs"}
    )
    status, err = await ann.patch(f"/users/{me['id']}", json={"groups": [_group(server, 3)]})
    assert status == 403 and err["detail"].startswith("groups")
    status, err = await ann.patch("/users/1", json={"first_name": "Hacked"})
    assert status == 403


async def test_delete_user_is_soft_and_revokes(admin: Api, anon: Api) -> None:
    """DELETE (204) deactivates and marks the user deleted; its token and password stop working."""
    ann = await admin.create_user("leaver", "annotator", [1])
    status, me = await ann.get("/auth/user")
    assert (await admin.delete(f"/users/{me['id']}"))[0] == 204
    assert (await ann.get("/auth/user"))[0] == 401
    status, _ = await anon.post(
        "/auth/login", json={"username": "leaver", "password": "leaver-password"}
    )
    assert status == 401
    status, user = await admin.get(f"/users/{me['id']}")
    assert user["is_active"] is False and user["deleted"] is True
    status, _err = await admin.patch(f"/users/{me['id']}", json={"is_active": True})
    assert status == 409


async def test_last_admin_is_protected(admin: Api, server: RunningServer) -> None:
    """The last active admin cannot be demoted, deactivated or deleted (409); with a second admin it can."""
    status, err = await admin.patch("/users/1", json={"groups": [_group(server, 2)]})
    assert status == 409 and err["code"] == "conflict_status"
    assert (await admin.patch("/users/1", json={"is_active": False}))[0] == 409
    assert (await admin.delete("/users/1"))[0] == 409
    await admin.create_user("second-admin", "admin")
    status, user = await admin.patch("/users/1", json={"groups": [_group(server, 4)]})
    assert status == 200 and user["groups"] == [_group(server, 4)]


async def test_change_own_password(admin: Api, anon: Api) -> None:
    """POST /auth/password/change checks the old password, keeps the caller's token, revokes others."""
    other_session = await anon.login(ADMIN_USER, ADMIN_PASSWORD)
    body = {"old_password": "wrong", "new_password1": "n3w-password!", "new_password2": "x"}
    status, err = await admin.post("/auth/password/change", json=body)
    assert status == 400 and err["detail"].startswith("new_password2")
    body["new_password2"] = body["new_password1"]
    status, err = await admin.post("/auth/password/change", json=body)
    assert status == 400 and err["detail"].startswith("old_password")
    body["old_password"] = ADMIN_PASSWORD
    status, user = await admin.post("/auth/password/change", json=body)
    assert status == 200 and user["username"] == ADMIN_USER
    assert (await admin.get("/auth/user"))[0] == 200
    assert (await other_session.get("/auth/user"))[0] == 401
    await anon.login(ADMIN_USER, "n3w-password!")


async def test_groups_list_and_retrieve(admin: Api, server: RunningServer) -> None:
    """GET /groups lists every role with id, url and name; /groups/{id} retrieves one; others 404."""
    status, body = await admin.get("/groups")
    assert status == 200
    names = [g["name"] for g in body["results"]]
    assert names[:4] == ["viewer", "annotator", "admin", "manager"]
    assert body["pagination"]["total"] == len(names)
    assert body["results"][2] == {"id": 3, "url": _group(server, 3), "name": "admin"}
    status, body = await admin.get("/groups", params={"name": "manager"})
    assert [g["id"] for g in body["results"]] == [4]
    assert (await admin.get("/groups/2"))[1]["name"] == "annotator"
    assert (await admin.get("/groups/99"))[0] == 404


async def test_own_organization_only(admin: Api, server: RunningServer) -> None:
    """GET /organizations/1 has the SDK's required fields; another id is 404; PATCH is admin-only."""
    status, org = await admin.get("/organizations/1")
    assert status == 200
    assert org["url"] == f"{server.api_url}/organizations/1"
    assert org["workspaces"] == [f"{server.api_url}/workspaces/1"]
    assert org["users"] == [f"{server.api_url}/users/1"]
    assert org["organization_group"] == f"{server.api_url}/organization_groups/1"
    assert org["is_trial"] is False and org["created_at"].endswith("Z")
    assert (await admin.get("/organizations/2"))[0] == 404
    status, listed = await admin.get("/organizations")
    assert [o["id"] for o in listed["results"]] == [1]
    status, group = await admin.get("/organization_groups/1")
    assert status == 200 and group["id"] == 1
    status, patched = await admin.patch("/organizations/1", json={"name": "Renamed"})
    assert status == 200 and patched["name"] == "Renamed"
    viewer = await admin.create_user("orgviewer", "viewer")
    assert (await viewer.get("/organizations/1"))[0] == 200
    assert (await viewer.patch("/organizations/1", json={"name": "x"}))[0] == 403


async def test_two_admins_demoting_each_other_leave_one_admin(
    admin: Api, server: RunningServer
) -> None:
    """Concurrent demotions of the only two admins: one wins, the organization keeps an admin."""
    other = await admin.create_user("admin-two", "admin")
    _, me = await other.get("/auth/user")
    annotator = {"groups": [_group(server, 2)]}
    results = await asyncio.gather(
        admin.patch(f"/users/{me['id']}", json=annotator),
        other.patch("/users/1", json=annotator),
    )
    statuses = sorted(status for status, _ in results)
    assert statuses.count(200) == 1 and statuses[1] in (403, 409), results
    _, admins = await admin.get("/users", params={"groups": "3", "is_active": "true"})
    assert admins["pagination"]["total"] == 1


async def test_admin_setting_own_password_keeps_the_calling_token(admin: Api, anon: Api) -> None:
    """An admin PATCHing its own password keeps the token it used; its other sessions end."""
    other_session = await anon.login(ADMIN_USER, ADMIN_PASSWORD)
    status, _ = await admin.patch("/users/1", json={"password": "changed-admin-password"})
    assert status == 200
    assert (await admin.get("/auth/user"))[0] == 200
    assert (await other_session.get("/auth/user"))[0] == 401
    await anon.login(ADMIN_USER, "changed-admin-password")
