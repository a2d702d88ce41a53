"""The `postroom user ...` commands as real subprocesses against a running service's database."""

from __future__ import annotations

from pathlib import Path

from tests.cli_support import postroom
from tests.conftest import PG_URL, Api, RunningServer


async def test_user_create_then_login_over_http(server: RunningServer, anon: Api) -> None:
    """`postroom user create` makes a user with role and queues who can log in over HTTP."""
    result = await postroom(
        server.data_dir,
        "user",
        "create",
        "--username",
        "cli-user",
        "--role",
        "annotator",
        "--password",
        "cli-user-password",
        "--queue",
        "1",
    )
    assert result.returncode == 0, result.stderr
    assert "created user cli-user" in result.stdout
    client = await anon.login("cli-user", "cli-user-password")
    status, me = await client.get("/auth/user")
    assert status == 200
    assert me["groups"] == [f"{server.api_url}/groups/2"]
    assert me["queues"] == [f"{server.api_url}/queues/1"]


async def test_user_password_revokes_tokens(server: RunningServer, admin: Api, anon: Api) -> None:
    """`postroom user password` changes the password and revokes the tokens issued before."""
    result = await postroom(
        server.data_dir, "user", "password", "admin", "--password", "a-new-admin-password"
    )
    assert result.returncode == 0, result.stderr
    assert (await admin.get("/auth/user"))[0] == 401
    status, _ = await anon.post(
        "/auth/login", json={"username": "admin", "password": "admin-secret-password"}
    )
    assert status == 401
    fresh = await anon.login("admin", "a-new-admin-password")
    assert (await fresh.get("/auth/user"))[0] == 200


async def test_user_commands_refuse_mistakes_in_one_line(server: RunningServer) -> None:
    """Duplicate usernames, unknown users and unknown queues exit non-zero with one line, no traceback."""
    attempts = [
        ("user", "create", "--username", "admin", "--role", "viewer", "--password", "x" * 10),
        (
            "user",
            "create",
            "--username",
            "q",
            "--role",
            "viewer",
            "--password",
            "x" * 10,
            "--queue",
            "99",
        ),
        ("user", "password", "nobody", "--password", "x" * 10),
    ]
    for args in attempts:
        result = await postroom(server.data_dir, *args)
        assert result.returncode != 0, args
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
    status_line = (await postroom(server.data_dir, "queue", "list")).stdout
    assert "Invoices" in status_line


async def test_user_create_before_first_start(tmp_path: Path) -> None:
    """On a database without an organization, `user create` says to start the service first."""
    env_backup = PG_URL
    if env_backup:
        # The PostgreSQL database is shared with the service fixture; this case needs an empty one.
        return
    result = await postroom(
        tmp_path / "empty",
        "user",
        "create",
        "--username",
        "u",
        "--role",
        "admin",
        "--password",
        "p" * 10,
    )
    assert result.returncode != 0
    assert "postroom serve" in result.stderr and "Traceback" not in result.stderr
