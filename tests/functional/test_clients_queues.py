"""The official Rossum clients, unchanged, against a real Postroom over real sockets: the
`rossum-api` SDK (in process) and the `rossum` CLI (as a subprocess) list, fetch and create queues."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from rossum_api import AsyncRossumAPIClient
from rossum_api.dtos import UserCredentials
from rossum_api.models.queue import Queue

from postroom.domain.queue_templates import load_template
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, Api, RunningServer


async def test_sdk_lists_retrieves_and_creates_queues(admin: Api, server: RunningServer) -> None:
    """AsyncRossumAPIClient's list_queues, retrieve_queue and create_new_queue parse our queues."""
    client = AsyncRossumAPIClient(
        base_url=server.api_url, credentials=UserCredentials(ADMIN_USER, ADMIN_PASSWORD)
    )
    try:
        listed = [queue async for queue in client.list_queues()]
        assert len(listed) == 1 and isinstance(listed[0], Queue)
        first = listed[0]
        assert first.counts["to_review"] == 0 and first.status == "active"
        fetched = await client.retrieve_queue(first.id)
        assert fetched == first
        created = await client.create_new_queue(
            {"name": "From the SDK", "schema": first.schema, "workspace": first.workspace,
             "locale": "en_US", "metadata": {"source": "sdk"}}
        )  # fmt: skip
        assert created.name == "From the SDK" and created.schema == first.schema
        assert created.locale == "en_US" and created.metadata == {"source": "sdk"}
        assert created.url == f"{server.api_url}/queues/{created.id}"
        by_name = [q.id async for q in client.list_queues(name="From the SDK")]
        assert by_name == [created.id]
        ordered = [q.name async for q in client.list_queues(ordering=["-name"])]
        assert ordered == sorted([first.name, "From the SDK"], reverse=True)
    finally:
        # The SDK has no close(); its httpx client would otherwise outlive the test's loop.
        await client._http_client.client.aclose()  # type: ignore[attr-defined]


async def test_sdk_paginates_many_queues(admin: Api, server: RunningServer) -> None:
    """With more queues than one page of 100, the SDK's parallel page fetch returns every queue."""
    schema = (await admin.get("/queues"))[1]["results"][0]["schema"]
    for i in range(104):
        await admin.post("/queues", json={"name": f"q{i:03d}", "schema": schema}, expect=201)
    client = AsyncRossumAPIClient(
        base_url=server.api_url, credentials=UserCredentials(ADMIN_USER, ADMIN_PASSWORD)
    )
    try:
        ids = [queue.id async for queue in client.list_queues()]
    finally:
        await client._http_client.client.aclose()  # type: ignore[attr-defined]
    assert len(ids) == 105 and len(set(ids)) == 105


async def run_rossum_cli(server: RunningServer, home: Path, *args: str) -> tuple[int, str]:
    """Run the `rossum` CLI as a new user would: ROSSUM_URL/USERNAME/PASSWORD, a private HOME."""
    env = {
        **os.environ,
        "HOME": str(home),
        "ROSSUM_URL": f"{server.base}/api",
        "ROSSUM_USERNAME": ADMIN_USER,
        "ROSSUM_PASSWORD": ADMIN_PASSWORD,
    }
    rossum = Path(sys.executable).with_name("rossum")
    # Asynchronous on purpose: the server under test runs on this same event loop.
    process = await asyncio.create_subprocess_exec(
        str(rossum),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode or 0, output.decode()


async def test_rossum_cli_creates_and_lists_queues(
    admin: Api, server: RunningServer, tmp_path: Path
) -> None:
    """`rossum queue create` (schema, queue, inbox) and `rossum queue list` succeed against Postroom."""
    schema_file = tmp_path / "schema.json"
    schema_file.write_text(json.dumps(load_template("default_schema")["content"]))
    status, output = await run_rossum_cli(
        server, tmp_path, "queue", "create", "CLI queue", "-s", str(schema_file),
        "-w", "1", "--email-prefix", "cli-queue", "--locale", "en_US",
    )  # fmt: skip
    assert status == 0, output
    queue_id, email = (part.strip() for part in output.strip().splitlines()[-1].split(","))
    assert email.startswith("cli-queue-") and email.endswith("@localhost")
    _, queue = await admin.get(f"/queues/{queue_id}", expect=200)
    assert queue["name"] == "CLI queue" and queue["locale"] == "en_US"
    assert queue["rir_url"] == "https://all.rir.rossum.ai" and queue["inbox"] is not None

    status, output = await run_rossum_cli(server, tmp_path, "queue", "list")
    assert status == 0, output
    rows: dict[str, Any] = {line.split()[0]: line for line in output.splitlines()[2:] if line}
    assert set(rows) == {"1", queue_id}
    assert "CLI queue" in rows[queue_id] and email in rows[queue_id]
