"""The image's HEALTHCHECK script (docker/healthcheck.py) as a real subprocess against a real server:
healthy on the port POSTROOM_HTTP_PORT names, unhealthy with a reason when nothing answers there."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

from tests.conftest import RunningServer

SCRIPT = Path(__file__).resolve().parents[2] / "docker" / "healthcheck.py"


async def healthcheck(**env: str) -> tuple[int, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("POSTROOM_")}
    environ.update(env)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode is not None
    return process.returncode, stderr.decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_healthy_on_the_configured_port_with_the_image_wildcard_host(
    server: RunningServer,
) -> None:
    code, stderr = await healthcheck(
        POSTROOM_HTTP_PORT=str(server.http_port), POSTROOM_HTTP_HOST="0.0.0.0"
    )
    assert (code, stderr) == (0, "")


async def test_unhealthy_when_nothing_answers_on_the_configured_port(
    server: RunningServer,
) -> None:
    port = free_port()
    assert port != server.http_port
    code, stderr = await healthcheck(POSTROOM_HTTP_PORT=str(port))
    assert code == 1
    assert stderr.startswith(f"unhealthy: http://127.0.0.1:{port}/api/v1/health")
