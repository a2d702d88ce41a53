"""The command line as an operator meets it, through real subprocesses: `--version`, `--config`
anywhere, one-line errors with their exit codes, passwords from stdin and the password policy,
no database created by mistake, Ctrl-C, and shell completion."""

from __future__ import annotations

import os
import pty
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import postroom
from postroom.domain.bootstrap import write_credentials
from tests.cli_support import command_env, one_line_error, postroom_sync
from tests.cli_support import postroom as run
from tests.conftest import PG_URL, Api, RunningServer, reset_postgres
from tests.subprocess_server import free_port


def test_version_is_the_package_version(tmp_path: Path) -> None:
    """`postroom --version` prints the version of the installed package and exits 0."""
    result = postroom_sync(tmp_path, "--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"postroom {postroom.__version__}"


def test_config_option_before_or_after_the_subcommand(tmp_path: Path) -> None:
    """`--config FILE` is read whether it stands before or after the (sub)command."""
    config = tmp_path / "postroom.toml"
    elsewhere = tmp_path / "configured-data"
    config.write_text(f'[http]\nport = 9123\n[storage]\ndata_dir = "{elsewhere}"\n')
    for args in (
        ("--config", str(config), "config", "show"),
        ("config", "show", "--config", str(config)),
        ("config", "--config", str(config), "show"),
    ):
        result = postroom_sync(None, *args)
        assert result.returncode == 0, (args, result.stderr)
        assert f"port = 9123  # file {config}" in result.stdout, args
    # A nested admin command reads it too: the database it looks for is the configured one.
    for args in (
        ("--config", str(config), "queue", "list"),
        ("queue", "list", "--config", str(config)),
    ):
        line = one_line_error(postroom_sync(None, *args))
        assert str(elsewhere / "postroom.sqlite3") in line, args


@pytest.mark.parametrize(
    "args",
    [
        ("frobnicate",),
        ("user", "create", "--username", "x", "--role", "wizard"),
        ("queue", "create"),
        ("user", "password"),
        ("--no-such-option", "serve"),
        ("completion", "fish"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(tmp_path: Path, args: tuple[str, ...]) -> None:
    """A mistake on the command line is one stderr line naming it (no usage dump) and exit 2."""
    result = postroom_sync(tmp_path, *args)
    line = one_line_error(result)
    assert result.returncode == 2
    assert "error:" in line and "--help" in line


async def test_unreachable_database_is_one_line_naming_it(tmp_path: Path) -> None:
    """With the database server down, admin commands and serve say so in one line (no password)."""
    port = free_port()
    url = f"postgresql+asyncpg://postroom:pw-not-shown@127.0.0.1:{port}/postroom"
    for args in (
        ("queue", "list"),
        ("user", "password", "admin", "--password", "x" * 10),
        ("serve",),
    ):
        result = await run(
            tmp_path / "data", *args, POSTROOM_DATABASE_URL=url, POSTROOM_HTTP_PORT="0"
        )
        line = one_line_error(result)
        assert result.returncode == 1, args
        assert f"127.0.0.1:{port}/postroom" in line and "database" in line, line
        assert "pw-not-shown" not in result.stderr


async def test_admin_commands_never_create_a_database_by_mistake(tmp_path: Path) -> None:
    """Run where no database exists, an admin command refuses in one line naming the database it
    looked for and creates nothing; `--create` means it, and `migrate` always may."""
    if PG_URL:
        await reset_postgres(PG_URL)  # an empty database: no Postroom tables
    elsewhere = tmp_path / "some-other-directory"
    elsewhere.mkdir()
    attempts = [
        ("queue", "list"),
        ("queue", "create", "--name", "Bills"),
        ("user", "create", "--username", "u1", "--role", "viewer", "--password", "p" * 10),
        ("user", "password", "admin", "--password", "p" * 10),
    ]
    for args in attempts:
        result = await run(Path("postroom-data"), *args, cwd=elsewhere)  # a relative data_dir
        line = one_line_error(result)
        assert "--create" in line, line
        if PG_URL:
            assert PG_URL.rsplit("@", 1)[1] in line
        else:
            assert str(elsewhere / "postroom-data" / "postroom.sqlite3") in line
    assert list(elsewhere.iterdir()) == []
    if PG_URL:
        assert "no Postroom database" in one_line_error(
            await run(tmp_path, "queue", "list")
        )  # still empty: nothing was created there either
    created = await run(Path("postroom-data"), "queue", "list", "--create", cwd=elsewhere)
    assert created.returncode == 0, created.stderr
    if not PG_URL:
        assert (elsewhere / "postroom-data" / "postroom.sqlite3").is_file()
    again = await run(Path("postroom-data"), "queue", "list", cwd=elsewhere)
    assert again.returncode == 0, again.stderr


async def test_user_password_reads_stdin_without_a_terminal(
    server: RunningServer, anon: Api
) -> None:
    """Piped into `user password` (no TTY) or given with `--password-stdin`, the password is the
    first line of stdin; it then works for login (and the first-start password file is gone)."""
    kept = write_credentials(server.data_dir, "admin", "first-start-password")
    piped = await run(server.data_dir, "user", "password", "admin", stdin=b"piped-password-1\n")
    assert piped.returncode == 0, piped.stderr
    assert not kept.exists()
    await anon.login("admin", "piped-password-1")
    created = await run(
        server.data_dir,
        *("user", "create", "--username", "stdin-user", "--role", "viewer", "--password-stdin"),
        stdin=b"stdin-user-password\n",
    )
    assert created.returncode == 0, created.stderr
    await anon.login("stdin-user", "stdin-user-password")
    empty = await run(server.data_dir, "user", "password", "admin", stdin=b"")
    assert "standard input" in one_line_error(empty)


async def test_password_policy_applies_to_the_cli(
    server: RunningServer, admin: Api, anon: Api
) -> None:
    """`user create` and `user password` refuse what the API refuses: too short, digits only,
    the username itself; nothing is changed."""
    refused = [
        ("user", "create", "--username", "weak", "--role", "viewer", "--password", "short"),
        ("user", "create", "--username", "weak", "--role", "viewer", "--password", "12345678901"),
        ("user", "create", "--username", "weakling", "--role", "viewer", "--password", "Weakling"),
        ("user", "password", "admin", "--password", "2718281828"),
    ]
    for args in refused:
        line = one_line_error(await run(server.data_dir, *args))
        assert line.startswith("postroom: password: must"), line
    _, users = await admin.get("/users", expect=200)
    assert [u["username"] for u in users["results"]] == ["admin"]
    await anon.login("admin", "admin-secret-password")  # unchanged


def test_ctrl_c_at_the_password_prompt_is_one_line(tmp_path: Path) -> None:
    """Ctrl-C typed at the password prompt (a real terminal) ends the command with one line and
    exit 130, no traceback."""
    pid, master = pty.fork()
    if pid == 0:  # the child: `postroom user password admin` on the pseudo-terminal
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # as in an interactive shell
        os.execve(
            sys.executable,
            [sys.executable, "-m", "postroom", "user", "password", "admin"],
            command_env(tmp_path),
        )
    output = b""
    deadline = time.monotonic() + 60
    while b"Password: " not in output and time.monotonic() < deadline:
        output += os.read(master, 1024)
    assert b"Password: " in output, output
    os.write(master, b"\x03")  # the terminal turns it into SIGINT
    while True:
        try:
            chunk = os.read(master, 1024)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    os.close(master)
    text = output.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 130, text
    assert "postroom: interrupted" in text and "Traceback" not in text


def _complete(script: str, line: str) -> list[str]:
    """What bash offers for `line` (the cursor at its end) with the completion script loaded."""
    words = line.split(" ")
    probe = (
        script
        + "\nCOMP_WORDS=("
        + " ".join(f"'{w}'" for w in words)
        + f")\nCOMP_CWORD={len(words) - 1}\n_postroom\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n"
    )
    result = subprocess.run(
        ["bash", "--norc", "--noprofile"],
        input=probe,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return [w for w in result.stdout.splitlines() if w]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completion_offers_commands_options_and_choices(tmp_path: Path) -> None:
    """`postroom completion bash` is a script that completes subcommands, options and choices."""
    result = postroom_sync(tmp_path, "completion", "bash")
    assert result.returncode == 0, result.stderr
    script = result.stdout
    assert "complete -o default -F _postroom postroom" in script
    assert _complete(script, "postroom us") == ["user"]
    assert _complete(script, "postroom user ") == ["create", "password"]
    assert _complete(script, "postroom --config x.toml user c") == ["create"]
    assert _complete(script, "postroom --c") == ["--config", "--create"]
    assert _complete(script, "postroom user create --role ma") == ["manager"]
    assert "--password-stdin" in _complete(script, "postroom user password admin --")
    assert _complete(script, "postroom config s") == ["show"]
    assert _complete(script, "postroom upload ") == []  # file names, from bash itself
    zsh = postroom_sync(tmp_path, "completion", "zsh")
    assert zsh.returncode == 0
    assert "bashcompinit" in zsh.stdout and "_postroom()" in zsh.stdout
