"""Hooks over real HTTP: stored fields, queue links, event and config validation, rights."""

from __future__ import annotations

from tests.conftest import Api, RunningServer
from tests.records import add_queue


async def _hook(admin: Api, **fields: object) -> dict[str, object]:
    body = {"name": "MyQ Hook", "config": {"url": "https://myq.example.com"}, "events": []}
    status, hook = await admin.post("/hooks", json={**body, **fields})
    assert status == 201, hook
    return hook  # type: ignore[no-any-return]


async def test_create_hook_stores_reference_fields(admin: Api, server: RunningServer) -> None:
    """POST /hooks (201) stores name, type, queues, events, config, settings, sideload, metadata."""
    queue_url = f"{server.api_url}/queues/1"
    hook = await _hook(
        admin,
        queues=[queue_url],
        events=["annotation_status.changed", "upload.created"],
        config={"url": "https://myq.example.com/hook?strict=true", "secret": "s3cret"},
        settings={"rules": [1]},
        sideload=["queues"],
        metadata={"owner": "ap"},
        active=False,
    )
    assert hook["url"] == f"{server.api_url}/hooks/{hook['id']}"
    assert hook["type"] == "webhook" and hook["active"] is False
    assert hook["queues"] == [queue_url]
    assert hook["events"] == ["annotation_status.changed", "upload.created"]
    assert hook["config"] == {"url": "https://myq.example.com/hook?strict=true", "secret": "s3cret"}
    assert hook["settings"] == {"rules": [1]} and hook["sideload"] == ["queues"]
    assert hook["metadata"] == {"owner": "ap"}
    assert hook["run_after"] == [] and hook["test"] == {}
    assert hook["created_by"] == f"{server.api_url}/users/1"
    assert (await admin.get(f"/hooks/{hook['id']}")) == (200, hook)
    _, listed = await admin.get("/hooks", params={"queue": "1"})
    assert [h["id"] for h in listed["results"]] == [hook["id"]]


async def test_whole_event_is_stored_as_its_actions(admin: Api) -> None:
    """An event without an action (`annotation_status`) is stored as its actions."""
    hook = await _hook(admin, events=["annotation_status", "email"])
    assert hook["events"] == ["annotation_status.changed", "email.received"]


async def test_hook_validation_names_the_field(admin: Api) -> None:
    """Unknown events, missing or non-http config.url, bad types and references answer 400."""
    base = {"name": "h", "config": {"url": "https://x.example.com"}}
    cases = [
        ({"config": {"url": "https://x"}}, "name"),
        ({"name": "h"}, "config"),
        ({**base, "events": ["annotation_status.exploded"]}, "events"),
        ({**base, "events": ["nothing"]}, "events"),
        ({**base, "config": {}}, "config.url"),
        ({**base, "config": {"url": "ftp://x"}}, "config.url"),
        ({**base, "type": "lambda"}, "type"),
        ({**base, "type": "function", "config": {"runtime": "cobol"}}, "config.runtime"),
        ({**base, "queues": ["http://h/api/v1/queues/99"]}, "queues"),
        ({**base, "run_after": ["http://h/api/v1/hooks/99"]}, "run_after"),
        ({**base, "token_owner": "http://h/api/v1/users/99"}, "token_owner"),
        ({**base, "token_lifetime_s": 9000}, "token_lifetime_s"),
    ]
    for body, field in cases:
        status, err = await admin.post("/hooks", json=body)
        assert status == 400, (body, err)
        assert err["code"] == "bad_request" and err["detail"].startswith(field), (body, err)
    _, listed = await admin.get("/hooks")
    assert listed["pagination"]["total"] == 0  # no half-created hook


async def test_function_hook(admin: Api) -> None:
    """A function hook needs a known runtime and code; both are stored."""
    config = {"runtime": "python3.12", "code": "def rossum_hook_request_handler(p): pass"}
    hook = await _hook(admin, type="function", config=config)
    assert hook["type"] == "function" and hook["config"] == config


async def test_patch_put_and_delete_hook(admin: Api, server: RunningServer) -> None:
    """PATCH merges config and replaces queues; PUT needs name and config and replaces config;
    DELETE drops run_after links."""
    other = await add_queue(server, "Other")
    first = await _hook(
        admin,
        queues=[f"{server.api_url}/queues/1"],
        config={"url": "https://myq.example.com", "secret": "kept"},
    )
    second = await _hook(admin, name="Second", run_after=[first["url"]])
    assert second["run_after"] == [first["url"]]
    path = f"/hooks/{first['id']}"
    status, patched = await admin.patch(
        path,
        json={
            "config": {"url": "https://stg.example.com"},
            "queues": [f"{server.api_url}/queues/{other}"],
        },
    )
    assert status == 200
    assert patched["config"] == {"url": "https://stg.example.com", "secret": "kept"}
    assert patched["queues"] == [f"{server.api_url}/queues/{other}"]
    status, patched = await admin.patch(path, json={"config": {}, "active": False})
    assert status == 200 and patched["config"]["url"] == "https://stg.example.com"
    status, err = await admin.put(path, json={"name": "only name"})
    assert status == 400 and err["detail"].startswith("config")
    status, put = await admin.put(path, json={"name": "P", "config": {"url": "https://p.example"}})
    assert status == 200 and put["config"] == {"url": "https://p.example"}
    status, err = await admin.patch(path, json={"run_after": [first["url"]]})
    assert status == 400 and err["detail"].startswith("run_after")
    assert (await admin.delete(path))[0] == 204
    assert (await admin.get(path))[0] == 404
    _, second_now = await admin.get(f"/hooks/{second['id']}")
    assert second_now["run_after"] == []


async def test_only_admins_and_managers_see_hooks(admin: Api) -> None:
    """Annotators and viewers get 403 on hooks; managers may create them."""
    hook = await _hook(admin)
    for role in ("annotator", "viewer"):
        client = await admin.create_user(f"hook-{role}", role, [1])
        assert (await client.get("/hooks"))[0] == 403
        assert (await client.get(f"/hooks/{hook['id']}"))[0] == 403
        assert (await client.delete(f"/hooks/{hook['id']}"))[0] == 403
    manager = await admin.create_user("hook-manager", "manager")
    await _hook(manager, name="by manager")


async def test_list_filters_by_event_and_config_url(admin: Api) -> None:
    """?events= matches hooks listening to an event (or any action of it); ?config_url= exactly."""
    status_hook = await _hook(admin, name="S", events=["annotation_status.changed"])
    upload_hook = await _hook(
        admin, name="U", events=["upload.created"], config={"url": "https://u.example.com"}
    )
    _, listed = await admin.get("/hooks", params={"events": "annotation_status"})
    assert [h["id"] for h in listed["results"]] == [status_hook["id"]]
    _, listed = await admin.get("/hooks", params={"events": "upload.created,email"})
    assert [h["id"] for h in listed["results"]] == [upload_hook["id"]]
    _, listed = await admin.get("/hooks", params={"config_url": "https://u.example.com"})
    assert [h["id"] for h in listed["results"]] == [upload_hook["id"]]
    status, err = await admin.get("/hooks", params={"events": "bogus"})
    assert status == 400 and err["detail"].startswith("events")
