"""Running `python -m postroom ARGS` as a real subprocess, from an async test (the in-process
service keeps serving while the command runs) or from a plain one."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import PG_URL


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def command_env(data_dir: Path | None, own_sqlite: bool = False, **env: str) -> dict[str, str]:
    """The environment of a command on `data_dir` (and the PostgreSQL database under test);
    with `data_dir` None, on whatever the configuration file names (SQLite)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("POSTROOM_")}
    environ["POSTROOM_LOG_LEVEL"] = "WARNING"
    if data_dir is None:
        own_sqlite = True
    else:
        environ["POSTROOM_STORAGE_DATA_DIR"] = str(data_dir)
    if PG_URL and not own_sqlite:
        environ["POSTROOM_DATABASE_URL"] = PG_URL
    environ.update(env)
    return environ


async def postroom(
    data_dir: Path,
    *args: str,
    own_sqlite: bool = False,
    stdin: bytes | None = None,
    cwd: Path | None = None,
    **env: str,
) -> Outcome:
    """Run `python -m postroom ARGS` on the data dir (and database) of the test service."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "postroom",
        *args,
        env=command_env(data_dir, own_sqlite, **env),
        cwd=cwd,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(stdin), timeout=60)
    assert process.returncode is not None
    return Outcome(process.returncode, stdout.decode(), stderr.decode())


def postroom_sync(
    data_dir: Path | None, *args: str, cwd: Path | None = None, **env: str
) -> Outcome:
    """`postroom` for tests that run no service in-process."""
    result = subprocess.run(
        [sys.executable, "-m", "postroom", *args],
        env=command_env(data_dir, **env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return Outcome(result.returncode, result.stdout, result.stderr)


def one_line_error(outcome: Outcome) -> str:
    """The single stderr line of a failed command (asserting there is exactly one, no traceback)."""
    assert outcome.returncode != 0, outcome
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1, outcome.stderr
    assert "Traceback" not in outcome.stderr + outcome.stdout
    return lines[0]
