"""The progress of `postroom upload` on stderr: files, bytes, rate and ETA while uploading, then a
live count of annotations by status while `--wait` follows them.

On a terminal it is a `rich` display redrawn in place; otherwise (a pipe, a log file, CI, a
`TERM=dumb` terminal) plain lines, at most one every few seconds plus a final one, so logs stay
readable. Lines about single files (skipped, failed) are printed above the display in both cases.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Mapping
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.progress import (
    Progress as RichProgress,
)

from postroom.client.outcomes import Outcome, size_text

PLAIN_EVERY = 2.0  # seconds between two plain progress lines


def counts_text(counts: Mapping[str, int]) -> str:
    """`3 importing, 27 to_review` (statuses in name order)."""
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "none"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """Counts what was sent and draws it; `add_bytes` may be called from reader threads."""

    def __init__(
        self,
        total_files: int,
        total_bytes: int,
        stream: TextIO = sys.stderr,
        *,
        tty: bool | None = None,
        quiet: bool = False,
    ) -> None:
        self.total_files, self.total_bytes = total_files, total_bytes
        self.files = self.bytes = self.failed = 0
        self.stream, self.quiet = stream, quiet
        if tty is None:
            tty = stream.isatty() and os.environ.get("TERM", "") != "dumb"
        self.tty = tty
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._last = 0.0
        self._last_counts = ""
        self._rich: RichProgress | None = None
        self._upload_task: TaskID | None = None
        self._wait_task: TaskID | None = None
        if self.tty and not quiet:
            console = Console(file=stream, force_terminal=True, stderr=stream is sys.stderr)
            self._rich = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[counts]}"),
                DownloadColumn(binary_units=True),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=console,
            )
            self._upload_task = self._rich.add_task(
                "uploading", total=max(total_bytes, 1), counts=self._files_text()
            )
            self._rich.start()

    def _files_text(self) -> str:
        failed = f", {self.failed} failed" if self.failed else ""
        return f"{self.files}/{self.total_files} files{failed}"

    def add_bytes(self, n: int) -> None:
        with self._lock:
            self.bytes += n
            if self._rich is not None and self._upload_task is not None:
                self._rich.update(self._upload_task, completed=self.bytes)

    def file_done(self, outcome: Outcome, *, counted: bool) -> None:
        """One file finished; `counted` when its bytes went in (else they leave the total)."""
        with self._lock:
            self.files += 1
            self.failed += 0 if outcome.ok else 1
            if not counted:
                self.total_bytes -= outcome.size
        if not outcome.ok:
            self.say(f"{outcome.result}: {outcome.path} ({outcome.detail})")
        if self._rich is not None and self._upload_task is not None:
            self._rich.update(
                self._upload_task, total=max(self.total_bytes, 1), counts=self._files_text()
            )
        else:
            self._plain(final=self.files == self.total_files)

    def _plain(self, *, final: bool = False) -> None:
        now = time.monotonic()
        if self.quiet or (not final and now - self._last < PLAIN_EVERY):
            return
        self._last = now
        elapsed = max(now - self.started, 1e-6)
        rate = self.bytes / elapsed
        left = max(self.total_bytes - self.bytes, 0)
        eta = f"ETA {_duration(left / rate)}" if rate > 0 and not final else _duration(elapsed)
        self._write(
            f"{self._files_text()}  {size_text(self.bytes)} of {size_text(self.total_bytes)}  "
            f"{size_text(rate)}/s  {eta}"
        )

    def say(self, line: str) -> None:
        """A line of its own (a skipped or failed file, a phase), above the live display."""
        if self._rich is not None:
            self._rich.console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            self._write(line)

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def wait_started(self, total: int) -> None:
        if self._rich is not None:
            console = self._rich.console
            self._rich.stop()  # the upload line stays on screen, complete
            self._rich = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[counts]}"),
                TimeElapsedColumn(),
                console=console,
            )
            self._wait_task = self._rich.add_task("importing", total=max(total, 1), counts="")
            self._rich.start()
        elif not self.quiet:
            self._write(f"waiting for the pipeline to import {total} files ...")

    def wait_counts(self, counts: Mapping[str, int], done: int) -> None:
        """The annotations followed, by status (`done` of them have left `importing`)."""
        text = counts_text(counts)
        if self._rich is not None and self._wait_task is not None:
            self._rich.update(self._wait_task, completed=done, counts=text)
        elif not self.quiet and text != self._last_counts:
            self._write(f"annotations: {text}")
        self._last_counts = text

    def close(self) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None
