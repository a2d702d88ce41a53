"""The uploader's pure parts: glob choice, the state file, and the progress display on a terminal
and off one (no server, no process)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from postroom.client.files import Globs, collect_files
from postroom.client.outcomes import Outcome
from postroom.client.progress import Progress
from postroom.client.resume import UploadState


def test_globs_match_names_or_relative_paths() -> None:
    globs = Globs(include=("*.pdf", "scans/*"), exclude=("*draft*",))
    assert globs.take("a.pdf") and globs.take("2024/b.pdf") and globs.take("scans/x.png")
    assert not globs.take("a.txt")  # no include matches
    assert not globs.take("2024/scans/x.png")  # a glob with / is the path from the folder
    assert not globs.take("draft-1.pdf")
    assert Globs().take("anything/at/all.bin")


def test_collect_files_walks_sorted_skips_hidden_and_duplicates(tmp_path: Path) -> None:
    for name in ("b/2.txt", "a.txt", "b/1.txt", ".git/x.txt", "b/.hidden"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    found = collect_files([str(tmp_path), str(tmp_path / "a.txt")])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a.txt", "b/1.txt", "b/2.txt"]


def test_state_file_keys_by_server_queue_and_sha256(tmp_path: Path) -> None:
    path = tmp_path / "state" / "uploaded.jsonl"
    state = UploadState.load(path, "http://h", 1)
    state.record("ab" * 32, Path("x.pdf"), "http://h/api/v1/annotations/5", "http://h/d/5")
    with path.open("a") as handle:
        handle.write("{not json\n" + json.dumps({"server": "http://h"}) + "\n")
    again = UploadState.load(path, "http://h", 1)
    found = again.find("ab" * 32)
    assert found is not None and found["annotation"].endswith("/annotations/5")
    assert UploadState.load(path, "http://h", 2).find("ab" * 32) is None
    assert UploadState.load(path, "http://other", 1).find("ab" * 32) is None


def test_unwritable_state_file_is_a_warning(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    state = UploadState.load(tmp_path / "uploaded.jsonl", "http://h", 1)
    state.path = blocker / "uploaded.jsonl"  # a file where a folder should be
    state.record("cd" * 32, Path("x"), None, None)
    assert state.warning is not None and "cannot write the state file" in state.warning
    assert state.find("cd" * 32) is not None  # still known for the rest of the run


def test_plain_progress_lines_carry_files_bytes_rate_and_failures() -> None:
    stream = io.StringIO()
    progress = Progress(2, 3000, stream, tty=False)
    progress.add_bytes(1000)
    progress.file_done(Outcome(Path("a"), 1000, result="uploaded", ok=True), counted=True)
    failed = Outcome(Path("b"), 2000, result="failed", detail="HTTP 400: no")
    progress.file_done(failed, counted=False)
    progress.wait_started(1)
    progress.wait_counts({"importing": 1}, 0)
    progress.wait_counts({"importing": 1}, 0)  # unchanged: no second line
    progress.wait_counts({"to_review": 1}, 1)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert "failed: b (HTTP 400: no)" in lines
    assert any(line.startswith("2/2 files, 1 failed  1000 B of 1000 B  ") for line in lines)
    assert lines[-2:] == ["annotations: 1 importing", "annotations: 1 to_review"]
    assert "\x1b[" not in stream.getvalue()


def test_terminal_progress_is_a_live_display() -> None:
    stream = io.StringIO()
    progress = Progress(1, 2048, stream, tty=True)
    progress.add_bytes(2048)
    progress.file_done(Outcome(Path("a"), 2048, result="uploaded", ok=True), counted=True)
    progress.wait_started(1)
    progress.wait_counts({"to_review": 1}, 1)
    progress.close()
    shown = stream.getvalue()
    assert "\x1b[" in shown  # drawn in place with terminal control sequences
    assert "1/1 files" in shown and "2.0/2.0 KiB" in shown
    assert "1 to_review" in shown and "1/1" in shown
