"""What one run of `postroom upload` ends with: per-file outcomes, the exit codes, the stops.

The exit codes are listed once, in `EXIT_CODES_HELP` (shown by `--help`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_UNREACHABLE = 4

EXIT_CODES_HELP = """\
exit codes:
  0  every file was uploaded (and, with --wait, imported), or was already there (--resume)
  1  some files were not: skipped, refused, failed to upload, or failed import
  2  bad command line or configuration (bad option or JSON, missing path, no files)
  3  refused as a whole: bad credentials, or the queue is unknown, not visible to
     the user, or not accepting documents (stops at the first such answer)
  4  the server could not be reached (connection refused or lost) after --retries
"""

# Annotation states that mean the import went through (automation may move it past to_review).
IMPORTED = frozenset({"to_review", "reviewing", "confirmed", "exporting", "exported", "postponed"})
UPLOADED = "uploaded"
ALREADY = "already_uploaded"


class UsageError(Exception):
    """A bad command line or configuration (exit code 2)."""


class Stop(Exception):
    """The whole run stops: the server refused us as a whole (3) or cannot be reached (4)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def refused(message: str) -> Stop:
    return Stop(message, EXIT_REFUSED)


def unreachable(message: str) -> Stop:
    return Stop(message, EXIT_UNREACHABLE)


@dataclass
class Outcome:
    """One file: what happened to it, and the records it made on the server."""

    path: Path
    size: int
    sha256: str = ""
    result: str = "pending"  # uploaded | already_uploaded | skipped | failed | <annotation status>
    detail: str = ""
    annotation_url: str | None = None
    document_url: str | None = None
    task_url: str | None = None
    ok: bool = False

    @property
    def annotation_id(self) -> str:
        return self.annotation_url.rstrip("/").rsplit("/", 1)[-1] if self.annotation_url else "-"

    @property
    def waiting(self) -> bool:
        """Uploaded in this run and still `importing` as far as we know."""
        return (
            self.ok and self.annotation_url is not None and self.result in (UPLOADED, "importing")
        )


def size_text(n: float) -> str:
    """`812 B`, `3.4 KiB`, `40.0 MiB`."""
    size, unit = float(n), "B"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            break
        size /= 1024
    return f"{int(n)} B" if unit == "B" else f"{size:.1f} {unit}"
