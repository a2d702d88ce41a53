"""The official clients, unchanged, against the setup resources (real HTTP over a socket).

The `rossum-api` SDK and the `rossum` CLI (run as a subprocess, configured by ROSSUM_* variables).

The SDK deserializes every object into dataclasses and fails on a missing required field, an
unexpected null or a value outside its enums, so each call here checks the JSON shape as well.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from rossum_api import AsyncRossumAPIClient
from rossum_api.dtos import UserCredentials

from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, RunningServer
from tests.records import add_queue


@pytest.fixture
async def client(server: RunningServer) -> AsyncIterator[AsyncRossumAPIClient]:
    """An SDK client logged in as the bootstrap admin (form login, Bearer token)."""
    sdk = AsyncRossumAPIClient(
        base_url=server.api_url, credentials=UserCredentials(ADMIN_USER, ADMIN_PASSWORD)
    )
    yield sdk
    # The SDK offers no close(); its httpx client would otherwise leak a connection pool.
    await sdk._http_client.client.aclose()


async def test_sdk_own_organization_and_groups(client: AsyncRossumAPIClient) -> None:
    """retrieve_own_organization, list_organizations and list_user_roles deserialize."""
    organization = await client.retrieve_own_organization()
    assert organization.id == 1 and organization.organization_group.endswith(
        "/organization_groups/1"
    )
    assert organization.workspaces and organization.users
    assert [o.id async for o in client.list_organizations()] == [1]
    group = await client.retrieve_organization_group(1)
    assert group.id == 1
    names = [g.name async for g in client.list_user_roles()]
    assert {"viewer", "annotator", "admin", "manager"} <= set(names)


async def test_sdk_workspaces(client: AsyncRossumAPIClient, server: RunningServer) -> None:
    """create_new_workspace, list_workspaces, retrieve_workspace and delete_workspace work."""
    created = await client.create_new_workspace(
        {"name": "SDK Workspace", "organization": f"{server.api_url}/organizations/1"}
    )
    assert created.autopilot is False and created.queues == []
    listed = [w.id async for w in client.list_workspaces()]
    assert listed == [1, created.id]
    first = await client.retrieve_workspace(1)
    assert first.queues == [f"{server.api_url}/queues/1"]
    await client.delete_workspace(created.id)
    assert [w.id async for w in client.list_workspaces()] == [1]


async def test_sdk_schemas(client: AsyncRossumAPIClient) -> None:
    """create_new_schema, list_schemas and retrieve_schema parse the content tree."""
    content = [
        {
            "category": "section",
            "id": "details",
            "label": "Details",
            "children": [
                {"category": "datapoint", "id": "invoice_id", "label": "Id", "type": "string"}
            ],
        }
    ]
    created = await client.create_new_schema({"name": "SDK Schema", "content": content})
    assert created.get_by_id("invoice_id") is not None
    bootstrap = await client.retrieve_schema(1)
    assert bootstrap.content and bootstrap.queues
    assert {s.id async for s in client.list_schemas()} == {1, created.id}


async def test_sdk_create_new_inbox(client: AsyncRossumAPIClient, server: RunningServer) -> None:
    """create_new_inbox returns an Inbox with the generated address and the queue link (a queue
    without an inbox: one that has one is a 409)."""
    queue_url = f"{server.api_url}/queues/{await add_queue(server, 'SDK inbox queue')}"
    inbox = await client.create_new_inbox(
        {
            "name": "SDK Inbox",
            "email_prefix": "sdk-inbox",
            "bounce_email_to": "ops@example.com",
            "queues": [queue_url],
            "filters": {"allowed_senders": ["*@example.com"]},
        }
    )
    assert inbox.email.startswith("sdk-inbox-") and inbox.email.endswith("@localhost")
    assert inbox.queues == [queue_url]
    assert inbox.filters["allowed_senders"] == ["*@example.com"]


async def test_sdk_users(client: AsyncRossumAPIClient, server: RunningServer) -> None:
    """create_new_user, list_users and retrieve_user deserialize into User."""
    created = await client.create_new_user(
        {
            "username": "sdk-user",
            "password": "sdk-user-password",
            "groups": [f"{server.api_url}/groups/2"],
            "queues": [f"{server.api_url}/queues/1"],
            "organization": f"{server.api_url}/organizations/1",
        }
    )
    assert created.groups == [f"{server.api_url}/groups/2"]
    assert [u.username async for u in client.list_users()] == [ADMIN_USER, "sdk-user"]
    again = await client.retrieve_user(created.id)
    assert again.queues == [f"{server.api_url}/queues/1"]


async def test_sdk_hooks(client: AsyncRossumAPIClient, server: RunningServer) -> None:
    """create_new_hook, list_hooks, update_part_hook and delete_hook work with the Hook model."""
    hook = await client.create_new_hook(
        {
            "name": "SDK Hook",
            "queues": [f"{server.api_url}/queues/1"],
            "config": {"url": "https://hooks.example.com"},
            "events": ["annotation_status"],
        }
    )
    assert [str(e) for e in hook.events] == ["annotation_status.changed"]
    updated = await client.update_part_hook(hook.id, {"active": False})
    assert updated.active is False
    assert [h.id async for h in client.list_hooks()] == [hook.id]
    await client.delete_hook(hook.id)
    assert [h.id async for h in client.list_hooks()] == []


async def rossum_cli(server: RunningServer, home: Path, *args: str) -> str:
    """Run the `rossum` CLI as a new user would (credentials from ROSSUM_* variables)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROSSUM_", "POSTROOM_"))}
    env.update(
        HOME=str(home),
        ROSSUM_URL=server.base + "/api",
        ROSSUM_USERNAME=ADMIN_USER,
        ROSSUM_PASSWORD=ADMIN_PASSWORD,
    )
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("rossum")),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, (args, output.decode())
    return output.decode()


async def test_rossum_cli_setup_commands(server: RunningServer, tmp_path: Path) -> None:
    """The `rossum` CLI creates and lists workspaces, users and hooks, and changes a hook."""
    await rossum_cli(server, tmp_path, "workspace", "create", "CLI Workspace")
    assert "CLI Workspace" in await rossum_cli(server, tmp_path, "workspace", "list")
    await rossum_cli(
        server, tmp_path, "user", "create", "cli@example.com", "-q", "1", "-g", "annotator"
    )
    users = await rossum_cli(server, tmp_path, "user", "list")
    assert "cli@example.com" in users and "annotator" in users
    await rossum_cli(
        server,
        tmp_path,
        *("hook", "create", "CLI hook", "-t", "webhook", "--active", "true"),
        *("-e", "annotation_status.changed", "--config-url", "https://h.example.com", "-q", "1"),
    )
    await rossum_cli(
        server,
        tmp_path,
        *("hook", "change", "1", "-t", "webhook", "--active", "false"),
        *("-e", "annotation_status.changed"),
    )
    hooks = await rossum_cli(server, tmp_path, "hook", "list")
    assert "CLI hook" in hooks and "False" in hooks and "https://h.example.com" in hooks
    assert "Invoice" in await rossum_cli(server, tmp_path, "schema", "list")
