"""Start-up, health, authentication basics and the error shape, over real HTTP."""

from __future__ import annotations

import base64

from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, Api, RunningServer


async def test_health_needs_no_auth_and_reports_database(anon: Api) -> None:
    """GET /health answers 200 with database ok, without credentials."""
    status, body = await anon.get("/health")
    assert status == 200
    assert body == {"status": "ok", "database": "ok"}


async def test_unknown_route_is_json_404(anon: Api) -> None:
    """Unknown routes answer 404 in the {detail, code} shape."""
    status, body = await anon.get("/no-such-thing")
    assert status == 404
    assert body["code"] == "not_found"
    assert body["detail"]


async def test_missing_credentials_are_401(anon: Api) -> None:
    """An endpoint other than health/login without credentials answers 401 authentication_failed."""
    status, body = await anon.get("/auth/user")
    assert status == 401
    assert body["code"] == "authentication_failed"


async def test_login_json_and_form_and_both_token_schemes(anon: Api, server: RunningServer) -> None:
    """Login accepts JSON and form bodies; Bearer and Token both authenticate."""
    status, body = await anon.post(
        "/auth/login", data={"username": ADMIN_USER, "password": ADMIN_PASSWORD}
    )
    assert status == 200 and len(body["key"]) == 40 and "domain" in body
    for scheme in ("Bearer", "Token"):
        status, user = await anon.get(
            "/auth/user", headers={"Authorization": f"{scheme} {body['key']}"}
        )
        assert status == 200
        assert user["username"] == ADMIN_USER
        assert user["url"] == f"{server.api_url}/users/{user['id']}"


async def test_bad_password_is_401(anon: Api) -> None:
    """A wrong password is refused with 401 and no token."""
    status, body = await anon.post(
        "/auth/login", json={"username": ADMIN_USER, "password": "wrong"}
    )
    assert status == 401
    assert body["code"] == "authentication_failed"
    assert "key" not in body


async def test_logout_revokes_the_token(admin: Api) -> None:
    """After logout (200) the same token answers 401."""
    status, _ = await admin.post("/auth/logout")
    assert status == 200
    status, _body = await admin.get("/auth/user")
    assert status == 401


async def test_basic_auth_refused_where_not_allowed(anon: Api) -> None:
    """Basic credentials are not accepted on ordinary endpoints (401 naming the reason)."""
    raw = base64.b64encode(f"{ADMIN_USER}:{ADMIN_PASSWORD}".encode()).decode()
    status, body = await anon.get("/auth/user", headers={"Authorization": f"Basic {raw}"})
    assert status == 401
    assert "Basic" in body["detail"]


async def test_malformed_json_is_400(anon: Api) -> None:
    """A malformed JSON body answers 400 bad_request, not 500."""
    status, body = await anon.post(
        "/auth/login", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert status == 400
    assert body["code"] == "bad_request"


async def test_token_lifetime_can_be_lowered(anon: Api) -> None:
    """max_token_lifetime_s=1 gives a token that expires: 401 afterwards."""
    import asyncio

    status, body = await anon.post(
        "/auth/login",
        json={"username": ADMIN_USER, "password": ADMIN_PASSWORD, "max_token_lifetime_s": 1},
    )
    assert status == 200
    await asyncio.sleep(1.2)
    status, err = await anon.get("/auth/user", headers={"Authorization": f"Bearer {body['key']}"})
    assert status == 401
    assert "expired" in err["detail"]


async def test_form_login_without_multipart_boundary_is_400(anon: Api) -> None:
    """A multipart/form-data login body without a boundary answers 400, not 500."""
    status, body = await anon.post(
        "/auth/login", data=b"username=x", headers={"Content-Type": "multipart/form-data"}
    )
    assert status == 400
    assert body["code"] == "bad_request" and "form" in body["detail"]
