"""`postroom serve` as a real process: first-start output, later starts, graceful signals."""

from __future__ import annotations

import json
import re
import signal
import socket
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ADMIN_PASSWORD, PG_URL, reset_postgres
from tests.subprocess_server import ServeProcess

pytestmark = pytest.mark.slow


@pytest.fixture
async def fresh_database() -> None:
    if PG_URL:
        await reset_postgres(PG_URL)


async def test_first_start_prints_url_credentials_inbox_and_curl(
    tmp_path: Path, fresh_database: None
) -> None:
    """First start prints the API URL, generated admin password, inbox address and a curl command;
    the next start prints the URL and no secret."""
    proc = ServeProcess(tmp_path / "data", POSTROOM_BOOTSTRAP_ADMIN_PASSWORD="")
    proc.start()
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    first = proc.output()
    assert f"http://127.0.0.1:{proc.http_port}/api/v1" in first
    assert "password: " in first and "store it safely" in first
    assert "@localhost" in first
    assert "curl -u 'admin:" in first and "/api/v1/queues/1/upload" in first

    proc.log_path.unlink()
    proc.start()
    proc.signal(signal.SIGINT)
    assert proc.wait() == 0
    second = proc.output()
    assert "/api/v1" in second
    assert "password:" not in second and "curl" not in second


async def test_sigterm_exits_zero_and_configured_password_is_not_printed(
    tmp_path: Path, fresh_database: None
) -> None:
    """With a configured admin password, it is never printed; SIGTERM ends the process with 0."""
    proc = ServeProcess(tmp_path / "data")
    proc.start()
    proc.signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert ADMIN_PASSWORD not in proc.output()
    assert "from the configuration" in proc.output()


def test_port_in_use_loses_no_first_start_credentials(tmp_path: Path, fresh_database: None) -> None:
    """A first start whose HTTP port is taken fails in one line naming the port and creates no
    admin; started again on a free port, it prints the generated password, keeps it in a 0600
    file of the data directory (named in the output), and the file goes at the first login."""
    proc = ServeProcess(tmp_path / "data", POSTROOM_BOOTSTRAP_ADMIN_PASSWORD="")
    with socket.create_server(("127.0.0.1", proc.http_port)):
        failed = subprocess.run(
            [sys.executable, "-m", "postroom", "serve"],
            env=proc.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert failed.returncode == 1, failed.stderr
    assert "password" not in failed.stdout + failed.stderr
    errors = [line for line in failed.stderr.splitlines() if "postroom:" in line]
    assert errors == [
        f"postroom: cannot listen on 127.0.0.1:{proc.http_port} (http.port): address already in use"
    ], failed.stderr
    assert "Traceback" not in failed.stderr

    proc.start()
    try:
        found = re.search(r"Admin user: +admin +password: (\S+)", proc.output())
        assert found, proc.output()
        kept = tmp_path / "data" / "initial-admin-credentials.txt"
        assert f"also kept in {kept} (mode 0600)" in proc.output()
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
        assert f"username: admin\npassword: {found.group(1)}\n" in kept.read_text()
        body = json.dumps({"username": "admin", "password": found.group(1)}).encode()
        request = urllib.request.Request(
            proc.base + "/api/v1/auth/login",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200 and json.load(response)["key"]
        assert not kept.exists()
    finally:
        proc.signal(signal.SIGTERM)
        assert proc.wait() == 0
