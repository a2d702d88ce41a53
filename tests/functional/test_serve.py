"""`postroom serve` as a real process: first-start output, later starts, graceful signals."""

from __future__ import annotations

import signal
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
    assert "password: " in first and "shown once" in first
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
