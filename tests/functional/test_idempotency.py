"""`Idempotency-Key` on the POSTs that create: a retry within 24 hours gets the first answer and
creates nothing; the key reused with another request is a 422; a retry while the first request
still runs is a 409; only successful answers are kept; expired keys are purged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import sqlalchemy as sa

from postroom.clock import utcnow
from postroom.db import tables as t
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, Api, RunningServer
from tests.smtp_support import execute, wait_for
from tests.upload_helpers import basic_api, count_rows, form, pdf_bytes

KEY = "Idempotency-Key"


def keyed(key: str) -> dict[str, str]:
    return {KEY: key}


async def _stored_keys(server: RunningServer) -> list[str]:
    assert server.service.runtime is not None
    async with server.service.runtime.db.reading() as conn:
        found = await conn.execute(sa.select(t.idempotency_keys.c.key))
        return sorted(found.scalars())


async def _raw_post(
    api: Api, path: str, key: str, data: Any
) -> tuple[int, dict[str, Any], aiohttp.typedefs.LooseHeaders]:
    async with api.session.post(
        api.url(path), data=data, headers={**api.headers, KEY: key}
    ) as response:
        return response.status, await response.json(), response.headers


async def test_json_create_retried_with_the_key_answers_the_first_answer(admin: Api) -> None:
    """POST /workspaces twice with one key: one workspace, the same 201 and body twice, the
    second marked replayed; another body with the key: 422 {detail, code}."""
    body = {"name": "Once"}
    first = await _raw_post(admin, "/workspaces", "ws-1", aiohttp.JsonPayload(body))
    again = await _raw_post(admin, "/workspaces", "ws-1", aiohttp.JsonPayload(body))
    assert first[0] == again[0] == 201
    assert again[1] == first[1]
    assert again[2].get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first[2]
    _, listed = await admin.get("/workspaces", params={"name": "Once"})
    assert listed["pagination"]["total"] == 1

    status, err = await admin.post("/workspaces", json={"name": "Other"}, headers=keyed("ws-1"))
    assert status == 422 and set(err) == {"detail", "code"}
    assert err["code"] == "unprocessable_entity" and err["detail"].startswith(KEY)
    _, listed = await admin.get("/workspaces", params={"name": "Other"})
    assert listed["pagination"]["total"] == 0

    # Without the key, or with another one, each POST creates.
    await admin.post("/workspaces", json=body, expect=201)
    await admin.post("/workspaces", json=body, headers=keyed("ws-2"), expect=201)
    _, listed = await admin.get("/workspaces", params={"name": "Once"})
    assert listed["pagination"]["total"] == 3


async def test_keys_belong_to_one_user(admin: Api) -> None:
    """Another user's request with the same key is their own: it creates."""
    manager = await admin.create_user("keyman", "manager")
    _, mine = await admin.post("/workspaces", json={"name": "A"}, headers=keyed("k"), expect=201)
    _, theirs = await manager.post(
        "/workspaces", json={"name": "A"}, headers=keyed("k"), expect=201
    )
    assert theirs["id"] != mine["id"]


async def test_failed_request_leaves_the_key_free(admin: Api) -> None:
    """A refused request (400) keeps no answer: the corrected retry with the key creates."""
    status, _ = await admin.post("/workspaces", json={"name": ""}, headers=keyed("fix"))
    assert status == 400
    _, made = await admin.post("/workspaces", json={"name": "Fixed"}, headers=keyed("fix"))
    assert made["name"] == "Fixed"


async def test_malformed_key_is_400(admin: Api) -> None:
    for bad in ("", "has space", "x" * 256):
        status, err = await admin.post("/workspaces", json={"name": "K"}, headers=keyed(bad))
        assert status == 400 and err["detail"].startswith(KEY), (bad, err)


async def test_multipart_upload_retried_with_a_new_boundary_is_one_upload(
    admin: Api, server: RunningServer
) -> None:
    """The same files and fields under a new multipart boundary (what a retrying client sends):
    the first 202 again, one upload, one document; another file with the key: 422."""
    content = pdf_bytes(tag="idem")
    fields = {"metadata": '{"po": "42"}'}
    url = "/uploads?queue=1"
    status, first = await admin.post(
        url, data=form([("a.pdf", content)], fields), headers=keyed("up-1")
    )
    assert status == 202, first
    status, again = await admin.post(
        url, data=form([("a.pdf", content)], fields), headers=keyed("up-1")
    )
    assert (status, again) == (202, first)
    counts = await count_rows(server)
    assert (counts["uploads"], counts["documents"]) == (1, 1)

    status, err = await admin.post(
        url, data=form([("a.pdf", pdf_bytes(tag="other"))], fields), headers=keyed("up-1")
    )
    assert status == 422, err
    status, err = await admin.post(
        url, data=form([("b.pdf", content)], fields), headers=keyed("up-1")
    )
    assert status == 422, err
    status, err = await admin.post(
        "/uploads?queue=1&reject_identical=false",
        data=form([("a.pdf", content)], fields),
        headers=keyed("up-1"),
    )
    assert status == 422, err  # another query is another request
    assert (await count_rows(server))["documents"] == 1


async def test_queue_upload_and_document_create_honour_the_key(
    admin: Api, server: RunningServer
) -> None:
    """POST /queues/{id}/upload (raw body) and POST /documents: a retry creates nothing."""
    content = pdf_bytes(tag="raw")
    headers = {"Content-Disposition": 'attachment; filename="raw.pdf"', KEY: "q-1"}
    _, first = await admin.post("/queues/1/upload", data=content, headers=headers, expect=201)
    _, again = await admin.post("/queues/1/upload", data=content, headers=headers, expect=201)
    assert again == first
    _, doc = await admin.post(
        "/documents", data=form([("d.pdf", content)]), headers=keyed("d-1"), expect=201
    )
    _, doc_again = await admin.post(
        "/documents", data=form([("d.pdf", content)]), headers=keyed("d-1"), expect=201
    )
    assert doc_again == doc
    assert (await count_rows(server))["documents"] == 2


async def test_basic_auth_upload_retry_is_replayed(anon: Api, server: RunningServer) -> None:
    """Integrations posting with Basic credentials get the same protection."""
    api = basic_api(anon)
    content = pdf_bytes(tag="basic")
    answers = [
        await api.post(
            "/uploads/basic.pdf?queue=1", data=content, headers=keyed("basic-1"), expect=202
        )
        for _ in range(2)
    ]
    assert answers[0] == answers[1]
    assert (await count_rows(server))["uploads"] == 1


async def test_retry_while_the_first_request_runs_is_409(admin: Api, server: RunningServer) -> None:
    """The first upload still streaming: a request with its key gets 409 at once and creates
    nothing; once the first is answered, a retry gets that answer."""
    content = pdf_bytes(tag="slow")
    half = len(content) // 2
    go_on = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield content[:half]
        await go_on.wait()
        yield content[half:]

    path = "/uploads/slow.pdf?queue=1"
    first = asyncio.create_task(admin.post(path, data=slow_body(), headers=keyed("slow")))

    async def held() -> bool:
        return "slow" in await _stored_keys(server)

    await wait_for(held)
    status, err = await admin.post(path, data=content, headers=keyed("slow"))
    assert status == 409 and err["code"] == "conflict_status", err
    go_on.set()
    status, answer = await first
    assert status == 202, answer
    assert await admin.post(path, data=content, headers=keyed("slow")) == (202, answer)
    assert (await count_rows(server))["uploads"] == 1


async def test_expired_keys_are_forgotten_and_purged(server_factory: Any, http: Any) -> None:
    """Older than 24 hours: the key makes a new object again, and the sweeping duty deletes the
    expired rows."""
    server: RunningServer = await server_factory(POSTROOM_PIPELINE_SWEEP_INTERVAL="0.2")
    admin = await Api(http, server.base, {}).login(ADMIN_USER, ADMIN_PASSWORD)
    _, first = await admin.post("/workspaces", json={"name": "E"}, headers=keyed("old"))
    k = t.idempotency_keys
    await execute(server, k.update().values(expires_at=utcnow() - timedelta(seconds=1)))
    _, second = await admin.post("/workspaces", json={"name": "E"}, headers=keyed("old"))
    assert second["id"] != first["id"]

    await admin.post("/workspaces", json={"name": "F"}, headers=keyed("purge-me"), expect=201)
    await execute(
        server,
        k.update().where(k.c.key == "purge-me").values(expires_at=utcnow() - timedelta(hours=1)),
    )

    async def purged() -> bool:
        return "purge-me" not in await _stored_keys(server)

    await wait_for(purged)
    assert await _stored_keys(server) == ["old"]  # answered again a moment ago: kept


async def test_openapi_declares_the_header_and_its_answers(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(server.api_url + "/openapi.json") as response:
        document = await response.json()
    for path in ("/api/v1/workspaces", "/api/v1/uploads", "/api/v1/documents"):
        op = document["paths"][path]["post"]
        names = [(p["name"], p["in"]) for p in op["parameters"]]
        assert (KEY, "header") in names, path
        assert {"409", "422"} <= set(op["responses"]), path
    login = document["paths"]["/api/v1/auth/login"]["post"]
    assert KEY not in [p["name"] for p in login["parameters"]]
