"""`postroom upload` as a real subprocess against a real server over HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, Api
from tests.uploader_support import annotation_count, credentials, make_invoices, run_upload


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The uploader's state file goes under the test's own folder, not ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.mark.slow
async def test_folder_of_200_files_with_wait_prints_progress_and_summary(
    server: Any, admin: Api, tmp_path: Path
) -> None:
    """A folder of 200 files is uploaded recursively; --wait reports each one in to_review; exit 0."""
    files = make_invoices(tmp_path / "invoices", 200)
    code, out, err = await run_upload(
        str(tmp_path / "invoices"), "--queue", "1", "--wait", "--concurrency", "8",
        *credentials(server),
    )  # fmt: skip
    assert code == 0, out + err
    assert "200/200 files" in err
    lines = out.strip().splitlines()
    assert lines[0].split()[:4] == ["FILE", "SIZE", "RESULT", "ANNOTATION"]
    assert lines[-1] == "200 files: 200 to_review"
    table = "\n".join(lines[1:-1])
    assert all(str(path) in table for path in files)
    assert ".DS_Store" not in out
    assert await annotation_count(admin) == 200


async def test_files_over_the_limit_are_skipped_with_a_clear_line(
    server: Any, admin: Api, tmp_path: Path
) -> None:
    """A file over --max-bytes is not sent, is named on stderr, and makes the exit code 1."""
    make_invoices(tmp_path / "in", 2)
    big = tmp_path / "in" / "big.txt"
    big.write_text("x" * 5000)
    code, out, err = await run_upload(
        str(tmp_path / "in"), "--queue", "1", "--max-bytes", "1000", *credentials(server)
    )
    assert code == 1
    assert f"skipped: {big} (4.9 KiB is over the 1000 B limit)" in err
    assert "2 uploaded" in out and "1 skipped" in out
    assert await annotation_count(admin) == 2


async def test_server_limit_413_is_reported_as_skipped(
    server_factory: Any, http: Any, tmp_path: Path
) -> None:
    """When the server refuses a file as too large (413), the uploader reports it skipped with the server's words."""
    server = await server_factory(POSTROOM_LIMITS_MAX_UPLOAD_BYTES="2000")
    big = tmp_path / "big.txt"
    big.write_text("y" * 10000)
    code, _, err = await run_upload(str(big), "--queue", "1", *credentials(server))
    assert code == 1
    assert "skipped: " in err and "server limit" in err and "2000" in err


async def test_rate_limited_uploads_are_retried_until_they_pass(
    server_factory: Any, http: Any, tmp_path: Path
) -> None:
    """Under a small rate limit the uploader waits out each 429 (Retry-After) and still uploads everything."""
    server = await server_factory(
        POSTROOM_LIMITS_REQUESTS_PER_SECOND="4", POSTROOM_LIMITS_BURST="3"
    )
    make_invoices(tmp_path / "in", 10)
    code, out, err = await run_upload(
        str(tmp_path / "in"), "--queue", "1", "--concurrency", "4", "--retries", "20",
        *credentials(server),
    )  # fmt: skip
    assert code == 0, out + err
    assert out.strip().splitlines()[-1] == "10 files: 10 uploaded"
    # The check's own requests draw on the same small per-address bucket: let it refill first.
    await asyncio.sleep(1.5)
    admin = await Api(http, server.base, {}).login(ADMIN_USER, ADMIN_PASSWORD)
    await asyncio.sleep(1)
    assert await annotation_count(admin) == 10
    for _ in range(10):
        status, metrics = await admin.get(server.base + "/metrics")
        if status != 429:
            break
        await asyncio.sleep(1)
    assert 'postroom_rate_limited_total{scope="address"}' in metrics


async def test_failed_import_is_reported_and_fails_the_run(
    server: Any, admin: Api, tmp_path: Path
) -> None:
    """A file type the queue does not accept ends failed_import; --wait shows it with its message; exit 1."""
    good = tmp_path / "good.txt"
    good.write_text("Invoice 1\n")
    bad = tmp_path / "blob.bin"
    bad.write_bytes(bytes(range(256)) * 8)
    code, out, err = await run_upload(
        str(good), str(bad), "--queue", "1", "--wait", "--token", admin.headers["Authorization"].split()[1],
        "--url", server.base,
    )  # fmt: skip
    assert code == 1, out + err
    row = next(line for line in out.splitlines() if "blob.bin" in line)
    assert "failed_import" in row
    assert "1 failed_import, 1 to_review" in out


async def test_metadata_and_values_reach_the_annotation(
    server: Any, admin: Api, tmp_path: Path
) -> None:
    """--metadata is stored on each annotation created by the upload."""
    path = tmp_path / "one.txt"
    path.write_text("Invoice\n")
    code, out, err = await run_upload(
        str(path), "--queue", "1", "--metadata", '{"batch": "b-7"}', "--values", "{}",
        *credentials(server),
    )  # fmt: skip
    assert code == 0, out + err
    _, body = await admin.get("/annotations?queue=1", expect=200)
    assert body["results"][0]["metadata"] == {"batch": "b-7"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--metadata", "{not json"], "--metadata is not valid JSON"),
        (["--values", "[1]"], "--values must be a JSON object"),
        (["--token", "t", "--user", "u"], "either --user/--password or --token"),
        ([], "credentials needed"),
    ],
)
async def test_bad_command_lines_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    """Malformed options are refused before anything is sent, with exit code 2."""
    path = tmp_path / "x.txt"
    path.write_text("x")
    code, _, err = await run_upload(
        str(path), "--queue", "1", "--url", "http://127.0.0.1:9", *args,
        env={"POSTROOM_TOKEN": ""},
    )  # fmt: skip
    assert code == 2
    assert message in err


async def test_wrong_password_exits_3_and_missing_path_exits_2(server: Any, tmp_path: Path) -> None:
    """A refused login stops with exit code 3; a path that does not exist is a usage error (2)."""
    path = tmp_path / "x.txt"
    path.write_text("x")
    code, _, err = await run_upload(
        str(path), "--queue", "1", "--url", server.base, "--user", ADMIN_USER, "--password", "no"
    )
    assert code == 3 and "login refused for user 'admin' (HTTP 401)" in err
    code, _, err = await run_upload(
        str(tmp_path / "missing"), "--queue", "1", "--url", server.base, "--token", "t"
    )
    assert code == 2 and "no such file or folder" in err
