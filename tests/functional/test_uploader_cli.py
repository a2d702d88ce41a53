"""`postroom upload` as a real subprocess: stops at the first refusal, exit codes, --json, --resume,
--include/--exclude, --parallel, and --wait reading annotations back in a few list calls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import ADMIN_USER, Api
from tests.queue_support import new_queue
from tests.uploader_support import (
    CountingRelay,
    credentials,
    make_invoices,
    requests_counted,
    run_upload,
    run_upload_on_pty,
    upload_count,
)

UPLOADS = ("POST", "/api/v1/uploads")
LISTS = ("GET", "/api/v1/annotations")
RETRIEVES = ("GET", "/api/v1/annotations/{id}")


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The uploader's state file goes under the test's own folder, not ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _delta(after: dict[Any, float], before: dict[Any, float], key: tuple[str, str]) -> float:
    return after.get(key, 0.0) - before.get(key, 0.0)


async def test_wrong_queue_stops_at_the_first_answer_with_one_line(
    server: Any, admin: Api, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """A queue that does not exist: one line on stderr, exit 3, and no file is even sent."""
    make_invoices(tmp_path / "in", 20)
    before = await requests_counted(http, server.base)
    code, out, err = await run_upload(str(tmp_path / "in"), "--queue", "99", *credentials(server))
    assert code == 3, out + err
    assert err.splitlines() == [
        "postroom upload: queue 99 not found, or not visible to this user (HTTP 404)"
    ]
    assert out == ""
    after = await requests_counted(http, server.base)
    assert _delta(after, before, UPLOADS) == 0
    assert await upload_count(admin) == 0


async def test_bad_credentials_stop_with_one_line_and_exit_3(server: Any, tmp_path: Path) -> None:
    """A wrong password and an unknown token each give one line and exit 3."""
    make_invoices(tmp_path / "in", 5)
    code, out, err = await run_upload(
        str(tmp_path / "in"), "--queue", "1", "--url", server.base,
        "--user", ADMIN_USER, "--password", "wrong",
    )  # fmt: skip
    assert code == 3 and out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith("postroom upload: login refused for user 'admin' (HTTP 401)")
    code, out, err = await run_upload(
        str(tmp_path / "in"), "--queue", "1", "--url", server.base, "--token", "not-a-token"
    )
    assert code == 3 and out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith("postroom upload: credentials refused (HTTP 401)")


async def test_user_who_may_not_import_stops_at_the_first_upload(
    server: Any, admin: Api, tmp_path: Path
) -> None:
    """A viewer sees the queue but may not import: the first 403 stops the run, one line, exit 3."""
    await admin.create_user("vera", "viewer", queues=[1])
    make_invoices(tmp_path / "in", 12)
    code, out, err = await run_upload(
        str(tmp_path / "in"), "--queue", "1", "--parallel", "2", "--json",
        "--url", server.base, "--user", "vera", "--password", "vera-password",
    )  # fmt: skip
    assert code == 3, out + err
    assert len(err.splitlines()) == 1
    assert err.startswith("postroom upload: queue 1: upload refused (HTTP 403)")
    report = json.loads(out)
    assert report["counts"]["not_sent"] >= 10  # at most the two in flight were sent
    assert await upload_count(admin) == 0


async def test_unreachable_server_exits_4_with_one_line(tmp_path: Path) -> None:
    """Nothing listening at --url: one line naming the server, exit 4; --json says so too."""
    path = tmp_path / "x.txt"
    path.write_text("x")
    code, out, err = await run_upload(
        str(path), "--queue", "1", "--url", "http://127.0.0.1:9", "--token", "t",
        "--retries", "1", "--json",
    )  # fmt: skip
    assert code == 4
    assert len(err.splitlines()) == 1
    assert err.startswith("postroom upload: cannot reach http://127.0.0.1:9: ")
    report = json.loads(out)
    assert report["exit_code"] == 4 and report["error"] == err.strip()[len("postroom upload: ") :]
    assert report["files"][0]["result"] == "not_sent"


async def test_json_summary_names_files_urls_statuses_and_failures(
    server: Any, tmp_path: Path
) -> None:
    """--json --wait: one object with every file's document/annotation/task URLs and status,
    counts, totals, and the failures; exit 1 because one file failed import."""
    good = tmp_path / "good.txt"
    good.write_text("Invoice 1\n")
    bad = tmp_path / "blob.bin"
    bad.write_bytes(bytes(range(256)) * 8)
    code, out, err = await run_upload(
        str(good), str(bad), "--queue", "1", "--wait", "--json", *credentials(server)
    )
    assert code == 1, out + err
    report = json.loads(out)
    api = server.api_url
    assert report["exit_code"] == 1 and report["error"] is None
    assert report["queue"] == f"{api}/queues/1"
    assert report["counts"] == {"failed_import": 1, "to_review": 1}
    assert report["totals"] == {"files": 2, "bytes": 10 + 2048, "ok": 1, "failed": 1}
    by_path = {f["path"]: f for f in report["files"]}
    first = by_path[str(good)]
    assert first["result"] == "to_review" and first["ok"] is True
    assert first["annotation"].startswith(f"{api}/annotations/")
    assert first["document"].startswith(f"{api}/documents/")
    assert first["task"].startswith(f"{api}/tasks/")
    assert len(first["sha256"]) == 64
    assert report["failures"] == [
        {"path": str(bad), "result": "failed_import", "detail": by_path[str(bad)]["detail"]}
    ]
    assert by_path[str(bad)]["detail"]


async def test_resume_sends_nothing_already_uploaded(
    server: Any, admin: Api, tmp_path: Path
) -> None:
    """A second run with --resume uploads nothing (the server's upload count stays); a new file
    goes alone; without the state file, the server's reject_identical answers keep it so."""
    folder = tmp_path / "in"
    make_invoices(folder, 6)
    code, out, err = await run_upload(str(folder), "--queue", "1", *credentials(server))
    assert code == 0, out + err
    assert await upload_count(admin) == 6

    code, out, err = await run_upload(
        str(folder), "--queue", "1", "--resume", "--json", *credentials(server)
    )
    assert code == 0, out + err
    report = json.loads(out)
    assert report["counts"] == {"already_uploaded": 6}
    assert all(f["annotation"] for f in report["files"])
    assert await upload_count(admin) == 6

    (folder / "new.txt").write_text("Invoice new\n")
    code, out, err = await run_upload(
        str(folder), "--queue", "1", "--resume", "--json", *credentials(server)
    )
    assert code == 0, out + err
    assert json.loads(out)["counts"] == {"already_uploaded": 6, "uploaded": 1}
    assert await upload_count(admin) == 7

    state = tmp_path / "cache" / "postroom" / "uploaded.jsonl"
    assert len(state.read_text().splitlines()) == 7
    state.unlink()  # another machine: the server refuses the identical files itself
    code, out, err = await run_upload(
        str(folder), "--queue", "1", "--resume", "--json", *credentials(server)
    )
    assert code == 0, out + err
    report = json.loads(out)
    assert report["counts"] == {"already_uploaded": 7}
    assert all(f["annotation"] for f in report["files"])
    assert await upload_count(admin) == 7

    # The same bytes in another queue are not "already uploaded" there.
    other = (await new_queue(admin))["id"]
    code, out, err = await run_upload(
        str(folder), "--queue", str(other), "--resume", "--json", *credentials(server)
    )
    assert code == 0, out + err
    assert json.loads(out)["counts"] == {"uploaded": 7}
    _, body = await admin.get(f"/uploads?queue={other}&page_size=1", expect=200)
    assert body["pagination"]["total"] == 7


async def test_include_and_exclude_globs_choose_files_in_folders(
    server: Any, tmp_path: Path
) -> None:
    """--include matches names, --exclude a relative path; a file named outright always goes."""
    root = tmp_path / "in"
    for name in ("a.txt", "b.pdf", "drafts/c.txt", "2024/d.txt", "2024/e.csv", ".hidden.txt"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"Invoice {name}\n")
    extra = tmp_path / "extra.csv"
    extra.write_text("Invoice extra\n")
    code, out, err = await run_upload(
        str(root), str(extra), "--queue", "1", "--include", "*.txt", "--include", "*.pdf",
        "--exclude", "drafts/*", "--json", *credentials(server),
    )  # fmt: skip
    assert code == 0, out + err
    sent = sorted(f["path"] for f in json.loads(out)["files"])
    assert sent == sorted(
        str(p) for p in (root / "2024/d.txt", root / "a.txt", root / "b.pdf", extra)
    )


async def test_parallel_bounds_the_uploads_in_flight(
    server: Any, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """--parallel 3: the server sees three uploads at once, never more."""
    make_invoices(tmp_path / "in", 6)
    relay = await CountingRelay(server.base, hold=3).start(http)
    try:
        code, out, err = await run_upload(
            str(tmp_path / "in"), "--queue", "1", "--parallel", "3",
            "--url", relay.base, "--user", ADMIN_USER, "--password", credentials(server)[-1],
        )  # fmt: skip
    finally:
        await relay.stop()
    assert code == 0, out + err
    assert out.strip().splitlines()[-1] == "6 files: 6 uploaded"
    assert relay.most == 3


async def test_wait_reads_statuses_back_in_a_few_list_calls(
    server: Any, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """30 files with --wait: statuses come from a handful of list calls, never one per file."""
    make_invoices(tmp_path / "in", 30)
    before = await requests_counted(http, server.base)
    code, out, err = await run_upload(
        str(tmp_path / "in"), "--queue", "1", "--wait", "--parallel", "8", *credentials(server)
    )
    assert code == 0, out + err
    after = await requests_counted(http, server.base)
    assert out.strip().splitlines()[-1] == "30 files: 30 to_review"
    assert "annotations: 30 to_review" in err  # the live count, as plain lines off a terminal
    assert "30/30 files" in err and "\x1b[" not in err
    assert _delta(after, before, UPLOADS) == 30
    assert _delta(after, before, RETRIEVES) == 0
    lists = _delta(after, before, LISTS)
    print(f"list calls for 30 files: {lists}")
    assert 1 <= lists <= 10


@pytest.mark.parametrize("args", [["--parallel", "0"], ["--parallel", "65"]])
async def test_bad_parallel_is_a_usage_error(tmp_path: Path, args: list[str]) -> None:
    path = tmp_path / "x.txt"
    path.write_text("x")
    code, _, err = await run_upload(str(path), "--queue", "1", "--token", "t", *args)
    assert code == 2 and "--parallel must be between 1 and 64" in err


async def test_help_documents_the_exit_codes() -> None:
    code, out, _ = await run_upload("--help")
    assert code == 0
    assert "exit codes:" in out
    for line in (
        "0  every file",
        "1  some files",
        "2  bad command line",
        "3  refused",
        "4  the server",
    ):
        assert line in out
    for option in ("--parallel", "--include", "--exclude", "--resume", "--json", "--wait"):
        assert option in out


async def test_progress_on_a_terminal_is_a_live_display(server: Any, tmp_path: Path) -> None:
    """With stderr on a terminal (a pty) the progress is drawn in place, with rate and ETA."""
    make_invoices(tmp_path / "in", 3)
    (tmp_path / "in" / "long.txt").write_text("Invoice line, total 10 EUR\n" * 2000)
    code, out, shown = await run_upload_on_pty(
        str(tmp_path / "in"), "--queue", "1", "--wait", *credentials(server)
    )
    assert code == 0, out + shown
    assert "\x1b[" in shown  # terminal control sequences: redrawn in place
    assert "4/4 files" in shown and "KiB" in shown and "/s" in shown
    assert "4 to_review" in shown
    assert out.strip().splitlines()[-1] == "4 files: 4 to_review"
